"""one submission per received file; one receipt per source reference

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:00:00.000000

Collect re-runs after a crash must never read the same bytes into a second submission, nor record the
same arrival (folder path + mtime + sha256, or mailbox message + attachment) twice: both are now
enforced by the database instead of by the intake code alone.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    # The unique constraint's own index serves the lookups the plain index served.
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.drop_index("ix_submissions_received_file_id")
        batch_op.create_unique_constraint("uq_submissions_received_file_id", ["received_file_id"])
    with op.batch_alter_table("file_receipts") as batch_op:
        batch_op.drop_index("ix_file_receipts_source_ref")
        batch_op.create_index("ix_file_receipts_source_ref", ["source", "source_ref"], unique=True)


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("file_receipts") as batch_op:
        batch_op.drop_index("ix_file_receipts_source_ref")
        batch_op.create_index("ix_file_receipts_source_ref", ["source", "source_ref"], unique=False)
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.drop_constraint("uq_submissions_received_file_id", type_="unique")
        batch_op.create_index("ix_submissions_received_file_id", ["received_file_id"], unique=False)
