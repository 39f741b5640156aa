"""Alembic environment: runs on the engine driftloop hands over, with its own version table."""

from alembic import context

from driftloop.schema import VERSION_TABLE
from driftloop.storage import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
