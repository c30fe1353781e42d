"""findings keep their contract keys and message parameters

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 22:00:00.000000

A finding is worded at the edge from the contract (`schemas.findings.render_message`); the reply to a
school re-renders stored findings, so the row keeps the sheet and field keys and the message
parameters. Rows written before this revision keep NULL there and are read back from their labels.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("findings") as batch_op:
        batch_op.add_column(sa.Column("sheet_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("field_key", sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column("params", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("findings") as batch_op:
        batch_op.drop_column("params")
        batch_op.drop_column("field_key")
        batch_op.drop_column("sheet_key")
