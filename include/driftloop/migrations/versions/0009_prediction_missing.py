"""Which features each predicted record left missing (JSON null or absent)

``inputs`` shows a null, but not a feature the request left out; this column names both, so
the log answers "what did the model impute here" without the version's schema at hand.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.add_column(sa.Column("missing", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.drop_column("missing")
