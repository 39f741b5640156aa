"""Performance monitoring: versions' out-of-sample references and per-batch, per-day checks

``health_checks`` (first feedback window against the latest, ``ab.decay_*``) is replaced by
``performance_checks``: its rows were derived from the prediction log and feedback, which stay,
so nothing is lost; the downgrade recreates the old table empty.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "performance_references",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=True),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_performance_references"),
    )
    op.create_index(
        "ix_performance_references_model_version", "performance_references", ["model_version"]
    )
    op.create_table(
        "performance_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey(
                "batches.id", ondelete="CASCADE", name="fk_performance_checks_batch_id_batches"
            ),
            nullable=True,
        ),
        sa.Column("day", sa.String(10), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("excluded_rows", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("low", sa.Float, nullable=True),
        sa.Column("high", sa.Float, nullable=True),
        sa.Column("reference_value", sa.Float, nullable=True),
        sa.Column("reference_rows", sa.Integer, nullable=True),
        sa.Column("p_value", sa.Float, nullable=True),
        sa.Column("decayed", sa.Boolean, nullable=False),
        sa.Column("announced", sa.Boolean, nullable=False),
        sa.Column("estimated_value", sa.Float, nullable=True),
        sa.Column("estimated_low", sa.Float, nullable=True),
        sa.Column("estimated_high", sa.Float, nullable=True),
        sa.Column("estimated_drop", sa.Boolean, nullable=False),
        sa.Column("prediction_drift", sa.Boolean, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_performance_checks"),
    )
    op.create_index("ix_performance_checks_model_version", "performance_checks", ["model_version"])
    op.create_index("ix_performance_checks_batch_id", "performance_checks", ["batch_id"])
    op.create_index("ix_performance_checks_created_at", "performance_checks", ["created_at"])
    op.drop_index("ix_health_checks_created_at", table_name="health_checks")
    op.drop_index("ix_health_checks_model_version", table_name="health_checks")
    op.drop_table("health_checks")


def downgrade() -> None:
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("baseline", sa.Float, nullable=True),
        sa.Column("current", sa.Float, nullable=True),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("decayed", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_health_checks"),
    )
    op.create_index("ix_health_checks_model_version", "health_checks", ["model_version"])
    op.create_index("ix_health_checks_created_at", "health_checks", ["created_at"])
    op.drop_index("ix_performance_checks_created_at", table_name="performance_checks")
    op.drop_index("ix_performance_checks_batch_id", table_name="performance_checks")
    op.drop_index("ix_performance_checks_model_version", table_name="performance_checks")
    op.drop_table("performance_checks")
    op.drop_index("ix_performance_references_model_version", table_name="performance_references")
    op.drop_table("performance_references")
