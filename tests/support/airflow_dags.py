"""A throw-away Airflow on SQLite for ``dag.test()`` runs, and the concept shift the retrain
tests drift on: what the DAG tests of several folders share.

Migrating Airflow's database takes a fresh interpreter about 20 s, so the suite migrates one
per run (``migrated_airflow_db`` in tests/conftest.py) and each test module gets a copy of it
(``airflow_env``): a module sees only its own runs, Asset events and queued DAGs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from driftloop.ingestion.stream import replay
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing
from tests.support.script_result import script_result

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
CONCEPT = ("alcohol", "pH", "density", "residual sugar", "chlorides")


def airflow_env_for(home: Path) -> dict[str, str]:
    """Environment of an Airflow on SQLite in ``home`` (its ``airflow.db``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DRIFTLOOP_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        PATH=f"{ROOT / '.venv/bin'}:{env.get('PATH', '')}",
    )
    return env


def migrated_airflow_env(home: Path) -> dict[str, str]:
    """:func:`airflow_env_for` ``home``, its database migrated."""
    env = airflow_env_for(home)
    subprocess.run(
        [str(ROOT / ".venv/bin/airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    return env


def dag_test(env: dict[str, str], dag_id: str, conf: dict) -> dict:
    """One ``dag.test()`` run of the project's DAG in a fresh process; its RESULT."""
    return script_result("dag_runner.py", str(DAGS), dag_id, json.dumps(conf), env=env)


def drifted(settings, engine) -> int:
    """Replay a concept shift, ingest and check it; return the first drift report id."""
    from driftloop import registry

    replay(settings, "concept", n_batches=8, start_batch=3, shift_features=CONCEPT)
    ingest_landing(settings, engine)
    production = registry.current_version(settings)
    while (outcome := check_next_batch(settings, engine, None, production)) is not None:
        if outcome.drifted:
            return outcome.report_id
    raise AssertionError("the concept scenario never drifted")
