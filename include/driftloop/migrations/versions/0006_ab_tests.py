"""A/B tests, their evaluations, the audit log and Production health checks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("production_version", sa.String(50), nullable=False),
        sa.Column("staging_version", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ab_tests"),
    )
    op.create_index("ix_ab_tests_status", "ab_tests", ["status"])
    op.create_table(
        "ab_evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("test_id", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("production_value", sa.Float, nullable=True),
        sa.Column("staging_value", sa.Float, nullable=True),
        sa.Column("production_samples", sa.Integer, nullable=False),
        sa.Column("staging_samples", sa.Integer, nullable=False),
        sa.Column("p_value", sa.Float, nullable=True),
        sa.Column("statistics", sa.JSON, nullable=False),
        sa.Column("json_path", sa.Text, nullable=True),
        sa.Column("html_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ab_evaluations"),
        sa.ForeignKeyConstraint(
            ["test_id"],
            ["ab_tests.id"],
            name="fk_ab_evaluations_test_id_ab_tests",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_ab_evaluations_created_at", "ab_evaluations", ["created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("production_before", sa.String(50), nullable=True),
        sa.Column("production_after", sa.String(50), nullable=True),
        sa.Column("staging_before", sa.String(50), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("test_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
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


def downgrade() -> None:
    op.drop_index("ix_health_checks_created_at", table_name="health_checks")
    op.drop_index("ix_health_checks_model_version", table_name="health_checks")
    op.drop_table("health_checks")
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_ab_evaluations_created_at", table_name="ab_evaluations")
    op.drop_table("ab_evaluations")
    op.drop_index("ix_ab_tests_status", table_name="ab_tests")
    op.drop_table("ab_tests")
