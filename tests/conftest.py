"""Shared fixtures: settings pointed at a temporary home, and throw-away databases.

Each PostgreSQL test database has a unique name and is dropped afterwards, so test runs never
see each other's state. Without a reachable PostgreSQL the tests skip, except under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.config import Settings, load_settings
from driftloop.storage import make_engine, upgrade

from .postgres import require_postgres, temporary_database

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The project's own config, with every runtime file under a temporary folder."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    return load_settings(ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    require_postgres()
    with temporary_database("driftloop_test") as url:
        yield url


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
