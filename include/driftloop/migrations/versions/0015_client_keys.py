"""Hashed client keys in the prediction log

A sticky client's requests all go to one variant, so they are not independent draws: the A/B
test's variance is taken over clients (``ab.sequential``). The log now keeps each sticky
request's client key, hashed (``predictions.client_key``, ``ab.traffic.client_hash``); rows
logged before have none and each request stays its own cluster.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.add_column(sa.Column("client_key", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as table:
        table.drop_column("client_key")
