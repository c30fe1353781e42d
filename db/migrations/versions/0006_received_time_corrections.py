"""operators correct a submission's received time, with who, when and why

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:00:00.000000

A drop-folder file's received time is its modification time: a file copied on 6 May from a Zalo
message of 4 May would be late forever (issue 12). `gec review ID --received-at … --note …` changes
`submissions.received_at` and records the correction here; states are re-derived from it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "received_time_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("previous_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_received_time_corrections_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_time_corrections")),
    )
    op.create_index(op.f("ix_received_time_corrections_submission_id"), "received_time_corrections",
                    ["submission_id"], unique=False)


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_index(op.f("ix_received_time_corrections_submission_id"), table_name="received_time_corrections")
    op.drop_table("received_time_corrections")
