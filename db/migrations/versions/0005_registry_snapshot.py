"""registry entries keep the school's name, level, ownership and ward as they stood for the cycle

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 22:30:00.000000

A cycle's registry snapshot no longer follows later edits of `reference/schools.csv` (issue 12): a
school renamed, moved or set inactive afterwards keeps its past cycles' figures. Existing rows are
filled from the schools table (the best record of how they stood) and dated by their cycle's row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("name", sa.Text()),
    ("level", sa.String(length=16)),
    ("ownership", sa.String(length=16)),
    ("ward", sa.String(length=64)),
)


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("registry_entries") as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
    for name, _ in COLUMNS:
        op.execute(
            f"UPDATE registry_entries SET {name} = "
            f"(SELECT schools.{name} FROM schools WHERE schools.code = registry_entries.school_code)"
        )
    op.execute(
        "UPDATE registry_entries SET recorded_at = "
        "(SELECT cycles.updated_at FROM cycles WHERE cycles.id = registry_entries.cycle_id)"
    )
    with op.batch_alter_table("registry_entries") as batch_op:
        for name, type_ in COLUMNS:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.alter_column("recorded_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("registry_entries") as batch_op:
        batch_op.drop_column("recorded_at")
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
