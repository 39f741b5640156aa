"""retrain runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("drift_check_id", sa.Integer, nullable=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(50), nullable=True),
        sa.Column("production_version", sa.String(50), nullable=True),
        sa.Column("metric", sa.String(30), nullable=True),
        sa.Column("challenger_score", sa.Float, nullable=True),
        sa.Column("production_score", sa.Float, nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_runs"),
    )
    op.create_index("ix_retrain_runs_decision", "retrain_runs", ["decision"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_decision", table_name="retrain_runs")
    op.drop_table("retrain_runs")
