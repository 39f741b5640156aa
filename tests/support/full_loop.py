"""The environment of a whole loop on real services and PostgreSQL (the full-stack test,
tests/full_stack/test_full_stack.py): Airflow's metadata, MLflow's backend store and
driftloop's tables each in their own uniquely named PostgreSQL database (all dropped
afterwards), and the check that no process of the run outlives it. MLflow, Airflow's
components, the Celery workers and the prediction server run as separate processes with the
commands the compose file uses.

The seeded scenario is a concept shift (five features move and the labels move with them), so
the bootstrapped model is clearly wrong on the new data: promotion is the expected outcome
there, not merely an allowed one."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from driftloop.demo.loop import LoopDatabases
from driftloop.stack.processes import wait_until
from tests.support.postgres import POSTGRES_ADMIN_URL, require_postgres, temporary_database


def _leftover_processes(marker: str) -> list[str]:
    """Processes of this test (found by its temporary folder) still alive."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if process.info["status"] == psutil.STATUS_ZOMBIE or not re.search(
                "airflow|mlflow|gunicorn|prediction_writer|celery", command
            ):
                continue
            if marker in command or any(marker in v for v in process.environ().values()):
                found.append(f"{process.pid} {command}")
    return found


def _existing_databases(names: list[str]) -> list[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                {"names": names},
            )
            return sorted(row[0] for row in rows)
    finally:
        admin.dispose()


@contextlib.contextmanager
def loop_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LoopDatabases, contextlib.ExitStack]]:
    """A clean environment and Airflow's, MLflow's and driftloop's own PostgreSQL databases
    for one run of the loop (and an ExitStack for the run's other resources); afterwards, that
    no process of the run (found by ``tmp_path``) outlives it and every database is dropped."""
    require_postgres()
    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (
            name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL"
        ):
            monkeypatch.delenv(name)
    names: list[str] = []
    with contextlib.ExitStack() as resources:

        def database(prefix: str) -> str:
            url = resources.enter_context(temporary_database(prefix))
            names.append(str(sa.engine.make_url(url).database))
            return url

        yield (
            LoopDatabases(
                airflow=database("airflow_test"),
                mlflow=database("mlflow_test"),
                driftloop=database("driftloop_test"),
            ),
            resources,
        )
    marker = str(tmp_path)
    assert wait_until(
        lambda: None if _leftover_processes(marker) else True,
        20,
        "the test's processes to exit",
        diagnostics=lambda: "\n".join(_leftover_processes(marker)),
    )
    assert _existing_databases(names) == []
