"""Traffic split versions, and the version each prediction row was routed under

Several server replicas poll the split on their own; for up to ``serving.poll_seconds`` after a
change they disagree. Each save now bumps ``traffic_splits.version`` and is kept in
``traffic_split_versions`` with its time, and each prediction row records the version it was
routed under, so the A/B analysis keeps only rows routed under the split then in force.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"  # main's 0010_performance; re-chain if another 0010 lands first
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traffic_splits") as table:
        table.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "traffic_split_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("staging_weight", sa.Float, nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("saved_by", sa.String(255), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model_name", "version"),
    )
    with op.batch_alter_table("predictions") as table:
        table.add_column(sa.Column("split_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.drop_column("split_version")
    op.drop_table("traffic_split_versions")
    with op.batch_alter_table("traffic_splits") as table:
        table.drop_column("version")
