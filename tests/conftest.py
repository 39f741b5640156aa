"""Shared fixtures: settings pointed at a temporary home, and throw-away databases.

Each PostgreSQL test database has a unique name and is dropped afterwards, so test runs never
see each other's state. Without a reachable PostgreSQL the tests skip, except under CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from driftloop.config import Settings, load_settings
from driftloop.storage import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The project's own config, with every runtime file under a temporary folder."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    return load_settings(ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"})


def _postgres_admin() -> sa.Engine:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(
                f"CI is set but PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable"
            ) from exc
        pytest.skip(
            f"no PostgreSQL reachable at {POSTGRES_ADMIN_URL} (set DRIFTLOOP_TEST_POSTGRES_URL)"
        )
    return engine


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    admin = _postgres_admin()
    name = f"driftloop_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind driftloop supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'driftloop.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on a database migrated to head."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
