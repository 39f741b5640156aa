"""How each logged request was assigned its variant: random, sticky or forced

The A/B analysis leaves out requests whose variant was forced (``X-Variant``: chosen by a
person for a check, not randomized).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.add_column(sa.Column("assignment", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.drop_column("assignment")
