"""Drift claims and merges: each batch checked exactly once by parallel checkers, and the
drift checks one retrain merged into the newest

``drift_monitor`` checks every unchecked batch at once (mapped tasks, possibly on several Celery
workers). A checker claims a batch first (``batches.drift_claimed_by``/``_at``, set by one
atomic UPDATE), so two checkers never both check it. When several drift events wait for one
retrain, it takes the newest check and records the others in ``drift_checks.merged_into``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("drift_claimed_by", sa.String(255), nullable=True))
        table.add_column(sa.Column("drift_claimed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("drift_checks") as table:
        table.add_column(sa.Column("merged_into", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_checks") as table:
        table.drop_column("merged_into")
    with op.batch_alter_table("batches") as table:
        table.drop_column("drift_claimed_at")
        table.drop_column("drift_claimed_by")
