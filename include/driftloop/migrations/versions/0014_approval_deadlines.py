"""Approval deadlines and late answers

An approval's deadline (``approvals.expires_at``) is set when its Airflow run starts to wait,
from the timeout the approval event carries; an answer that came after the approval was
settled (timed out, superseded, or the pair changed) is kept in ``approvals.late_answer``
instead of being dropped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as table:
        table.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("late_answer", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as table:
        table.drop_column("late_answer")
        table.drop_column("expires_at")
