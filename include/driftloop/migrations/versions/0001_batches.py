"""batches and their validation history

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=True),
        sa.Column("labelled", sa.Boolean, nullable=False),
        sa.Column("batch_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("digest", name="uq_batches_digest"),
    )
    op.create_index("ix_batches_name", "batches", ["name"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_index("ix_batches_batch_time", "batches", ["batch_time"])
    op.create_table(
        "batch_validations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey(
                "batches.id", ondelete="CASCADE", name="fk_batch_validations_batch_id_batches"
            ),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batch_validations"),
    )


def downgrade() -> None:
    op.drop_table("batch_validations")
    op.drop_index("ix_batches_batch_time", table_name="batches")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_index("ix_batches_name", table_name="batches")
    op.drop_table("batches")
