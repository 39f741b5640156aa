"""Traffic checks: the drift check of each window of served traffic

``drift_monitor`` also tests the prediction log's inputs per window (``monitoring.
traffic_window``) against the Production version's reference (issue 31, item 4). One row per
model and window (a unique pair), so a window is never checked twice, even by two runs at
once. A table of its own rather than ``drift_checks``: a drift check is a batch's, which the
retrain reads as the rows since the drift; a traffic window starts no retrain.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column(
            "profile_id",
            sa.Integer,
            sa.ForeignKey(
                "reference_profiles.id", name="fk_traffic_checks_profile_id_reference_profiles"
            ),
            nullable=True,
        ),
        sa.Column("model_version", sa.String(50), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("drift_share", sa.Float, nullable=True),
        sa.Column("drifted_features", sa.JSON, nullable=False),
        sa.Column("multivariate_flag", sa.Boolean, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("json_path", sa.Text, nullable=True),
        sa.Column("html_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_traffic_checks"),
        sa.UniqueConstraint("model_name", "window_start", name="uq_traffic_checks_model_window"),
    )
    op.create_index("ix_traffic_checks_model_name", "traffic_checks", ["model_name"])
    op.create_index("ix_traffic_checks_status", "traffic_checks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_traffic_checks_status", table_name="traffic_checks")
    op.drop_index("ix_traffic_checks_model_name", table_name="traffic_checks")
    op.drop_table("traffic_checks")
