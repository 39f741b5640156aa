"""The gate's evidence in retrain_runs: test, rows, difference, interval, margin, alpha, attempt

The gate became a non-inferiority test with a third outcome, ``insufficient_evidence`` (21
characters: the decision column grows to 30), and an undecided version is re-gated on a grown
holdout, each attempt a row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (
    ("gate_test", sa.String(60)),
    ("gate_rows", sa.Integer()),
    ("gate_difference", sa.Float()),
    ("gate_low", sa.Float()),
    ("gate_high", sa.Float()),
    ("gate_margin", sa.Float()),
    ("gate_alpha", sa.Float()),
    ("gate_attempt", sa.Integer()),
)


def upgrade() -> None:
    with op.batch_alter_table("retrain_runs") as table:
        table.alter_column(
            "decision", existing_type=sa.String(20), type_=sa.String(30), existing_nullable=False
        )
        for name, type_ in COLUMNS:
            table.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    # Rows written since may hold the longer decision: shorten it so the old type holds it.
    op.execute(
        "UPDATE retrain_runs SET decision = 'insufficient' WHERE decision = 'insufficient_evidence'"
    )
    with op.batch_alter_table("retrain_runs") as table:
        for name, _type in reversed(COLUMNS):
            table.drop_column(name)
        table.alter_column(
            "decision", existing_type=sa.String(30), type_=sa.String(20), existing_nullable=False
        )
