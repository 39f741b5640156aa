"""The revisions of driftloop's schema: Alembic migrations under ``driftloop/migrations``.

Alembic keeps driftloop's revision in its own version table, so driftloop can share a
database with Airflow and MLflow, which use Alembic too.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

VERSION_TABLE = "driftloop_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _alembic_config(engine: sa.Engine, model_name: str | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    config.attributes["model_name"] = model_name
    return config


def upgrade(engine: sa.Engine, revision: str = "head", model_name: str | None = None) -> None:
    """Migrate up to ``revision``. ``model_name`` is the model the rows stored before revision
    0016 belong to (``model.name``); without it 0016 takes the one name the rows carry."""
    command.upgrade(_alembic_config(engine, model_name), revision)


def downgrade(engine: sa.Engine, revision: str = "base") -> None:
    command.downgrade(_alembic_config(engine), revision)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(
        _alembic_config(sa.create_engine("sqlite://"))
    ).get_current_head()


def require_current(engine: sa.Engine) -> None:
    """Refuse to work on a database whose schema is not at head, with the command that fixes it."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise RuntimeError(
            f"database {engine.url.render_as_string(hide_password=True)} is at revision "
            f"{current or 'none'}, not {head}: run `driftloop db upgrade`"
        )
