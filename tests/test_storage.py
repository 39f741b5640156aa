from __future__ import annotations

import pytest
import sqlalchemy as sa

from driftloop.schema import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    require_current,
    upgrade,
)
from driftloop.storage import make_engine


def test_migrations_upgrade_empty_database_to_head_and_back(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    with pytest.raises(RuntimeError, match="driftloop db upgrade"):
        require_current(engine)

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    require_current(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"batches", "batch_validations", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # Airflow's and MLflow's stays theirs

    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE}

    upgrade(engine)  # and up again: downgrades leave nothing behind that blocks an upgrade
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_migrations_leave_another_alembic_user_alone(database_url):
    """Airflow or MLflow in the same database keep their own alembic_version row."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        )
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('their_rev')"))
    upgrade(engine)
    downgrade(engine, "base")
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            == "their_rev"
        )
    engine.dispose()


def test_the_models_and_the_migrations_describe_the_same_schema(database_url):
    """A table or column added to the models without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from driftloop.storage import Base

    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
