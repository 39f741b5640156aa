"""Throw-away PostgreSQL databases for tests: one home for reaching the server and for the
uniquely named databases every test run creates and drops.

Without a reachable server the tests that need one skip with a message, except under CI, where
a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def require_postgres(admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Skip the calling test without PostgreSQL; under CI, fail instead."""
    admin = sa.create_engine(admin_url)
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI is set but PostgreSQL at {admin_url} is unreachable") from exc
        pytest.skip(f"no PostgreSQL reachable at {admin_url} (set DRIFTLOOP_TEST_POSTGRES_URL)")
    finally:
        admin.dispose()


@contextmanager
def temporary_database(prefix: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """Create a uniquely named, empty database and drop it afterwards.

    A unique name keeps concurrent and earlier runs apart; ``WITH (FORCE)`` drops it even when
    a killed process left a session open.
    """
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
