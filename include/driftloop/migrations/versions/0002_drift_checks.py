"""reference profiles and drift checks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_profiles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("data_digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("model_version", sa.String(50), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reference_profiles"),
    )
    op.create_table(
        "drift_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey(
                "batches.id", ondelete="CASCADE", name="fk_drift_checks_batch_id_batches"
            ),
            nullable=False,
        ),
        sa.Column(
            "profile_id",
            sa.Integer,
            sa.ForeignKey(
                "reference_profiles.id", name="fk_drift_checks_profile_id_reference_profiles"
            ),
            nullable=True,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("drift_share", sa.Float, nullable=True),
        sa.Column("drifted_features", sa.JSON, nullable=False),
        sa.Column("target_drift", sa.Boolean, nullable=False),
        sa.Column("model_version", sa.String(50), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("json_path", sa.Text, nullable=True),
        sa.Column("html_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drift_checks"),
        sa.UniqueConstraint("batch_id", name="uq_drift_checks_batch_id"),
    )
    op.create_index("ix_drift_checks_status", "drift_checks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_drift_checks_status", table_name="drift_checks")
    op.drop_table("drift_checks")
    op.drop_table("reference_profiles")
