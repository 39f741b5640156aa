"""Alembic environment: runs on the engine driftloop hands over, with its own version table.

On SQLite, batch mode rebuilds a table to change it (copy, drop, rename). With foreign keys
enforced, dropping ``batches`` would delete every row that refers to it (drift checks,
validations, performance checks: ``ON DELETE CASCADE``), so enforcement is off while
migrating, as Alembic's batch mode asks, and the references are checked before it is back on.
"""

from alembic import context

from driftloop.schema import VERSION_TABLE
from driftloop.storage import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # outside any transaction, or SQLite ignores it
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                version_table=VERSION_TABLE,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migrating left rows referring to none: {broken[:5]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
