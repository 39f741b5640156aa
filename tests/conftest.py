"""Shared fixtures: settings pointed at a temporary home, and throw-away databases.

Each PostgreSQL test database has a unique name and is dropped afterwards, so test runs never
see each other's state. Without a reachable PostgreSQL the tests skip, except under CI.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from driftloop.config import Settings
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stack.processes import free_port
from driftloop.storage import make_engine
from tests.support.postgres import require_postgres, temporary_database

if TYPE_CHECKING:
    from tests.support.many_models import ManyModels

ROOT = Path(__file__).resolve().parents[1]

# Hypothesis: under CI the same examples every run (derandomized, no example database), so a
# red build is reproducible; elsewhere random search. Either way a failure prints the blob
# that replays it (@reproduce_failure). HYPOTHESIS_PROFILE picks one by hand.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("dev", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_report_header() -> str:
    return f"hypothesis profile: {hypothesis_settings._current_profile}"


# `make test` runs the files on two pytest-xdist workers, each file whole on one worker
# (``--dist loadfile --no-loadscope-reorder``): the files that take minutes (measured on the
# two-core CI machine) go first, so that no worker is left running one of them alone at the end.
SLOWEST_FILES = (
    "tests/full_stack/test_full_stack.py",
    "tests/faults/test_airflow_faults.py",
    "tests/cli/test_ab.py",
    "tests/stages/test_approval.py",
    "tests/ui/test_plugin.py",
    "tests/orchestration/test_dags.py",
    "tests/cli/test_drift.py",
    "tests/cli/test_models.py",
    "tests/faults/test_server_faults.py",
    "tests/cli/test_end_to_end.py",
    "tests/drift/test_segments.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first, the rest in their usual order (the sort is stable)."""
    rank = {path: position for position, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def clear_driftloop_env(patch: pytest.MonkeyPatch) -> None:
    """No ``DRIFTLOOP_*`` override from the shell running the tests (but the test PostgreSQL)."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            patch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The project's own config, with every runtime file under a temporary folder."""
    clear_driftloop_env(monkeypatch)
    return load_settings(ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"})


@pytest.fixture(scope="session")
def three_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManyModels]:
    """Three models in one config, each in another state (``tests.support.many_models``),
    built once for the run: tests read it and change nothing."""
    from tests.support.many_models import many_models

    with pytest.MonkeyPatch.context() as patch:
        clear_driftloop_env(patch)
        deployment = many_models(tmp_path_factory.mktemp("three-models"))
    yield deployment
    deployment.engine.dispose()


@pytest.fixture
def models_config(three_models: ManyModels, monkeypatch: pytest.MonkeyPatch) -> ManyModels:
    """The three models, in a test whose environment overrides nothing."""
    clear_driftloop_env(monkeypatch)
    return three_models


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator of the test's own, seeded by its name: the same draws whatever runs
    before it (a shared module-level generator hands out draws in test order)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


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


@pytest.fixture
def pair(settings: Settings) -> Iterator[tuple[Settings, sa.Engine, str, str]]:
    """A/B tests: settings, a migrated engine on the settings' database, and registered
    Production and Staging versions."""
    from tests.support.registry_home import production_and_staging

    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    yield settings, engine, production, staging
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow metadata database on SQLite, migrated once for the whole run (a migration
    takes a fresh interpreter about 20 s)."""
    from .support.airflow_dags import migrated_airflow_env

    home = tmp_path_factory.mktemp("airflow-template")
    migrated_airflow_env(home)
    return home / "airflow.db"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, migrated_airflow_db: Path) -> dict:
    """Environment of a throw-away Airflow on SQLite for a module's ``dag.test()`` runs: a copy
    of the migrated database, so each module starts with no runs and no Asset events."""
    import shutil

    from .support.airflow_dags import airflow_env_for

    home = tmp_path_factory.mktemp("airflow")
    shutil.copyfile(migrated_airflow_db, home / "airflow.db")
    return airflow_env_for(home)


@pytest.fixture
def receiver():
    """A webhook receiver in this process: the alerts' real HTTP path; (url, messages)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
