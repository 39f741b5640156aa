"""Opening driftloop's database, with first use made easy.

On the embedded default (SQLite under ``storage.home``) a database that does not exist yet is
created at the newest revision by whoever opens it first: the CLI, a DAG task or the server.
Several processes may start at once, so creation happens under an exclusive file lock and is
checked again once the lock is held. Anything else (an existing database at an older revision,
PostgreSQL, an explicit SQLite URL) is never migrated behind the operator's back: it still
needs ``driftloop db upgrade``, and :func:`driftloop.schema.require_current` says so.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.schema import current_revision, head_revision, require_current, upgrade
from driftloop.storage import make_engine

log = logging.getLogger(__name__)


def open_database(settings: Settings) -> sa.Engine:
    """An engine on driftloop's database at the newest revision, created on first use when it
    is the embedded default; otherwise the database must already be at head."""
    engine = make_engine(settings.database_url)
    if not settings.database.url:
        _create_if_new(engine, Path(engine.url.database), settings.model.name)
    require_current(engine)
    return engine


def _create_if_new(engine: sa.Engine, path: Path, model_name: str) -> None:
    if path.exists() and current_revision(engine) == head_revision():
        return  # the everyday case: no lock taken
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        # another process may be creating it right now: wait for it, then look again
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not sa.inspect(engine).get_table_names():
                log.info("creating driftloop's database at %s (first use)", path)
                upgrade(engine, model_name=model_name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
