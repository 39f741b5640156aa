"""The DAG files: they import cleanly, parse fast, and drift_monitor behaves under dag.test()."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from driftloop.data import read_table
from driftloop.drift.traffic import window_of
from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.stages.ingest import ingest_landing
from driftloop.stages.traffic_check import recent_traffic_checks
from driftloop.storage import make_engine, utcnow
from tests.conftest import ROOT
from tests.support.airflow_dags import DAGS, dag_test
from tests.support.traffic_rows import served_rows, write_log

PYTHON = str(ROOT / ".venv/bin/python")


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_dagbag_imports_every_dag_without_errors(airflow_env):
    out = _python(
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "print(repr(bag.import_errors)); print(sorted(bag.dag_ids))",
        airflow_env,
    )
    errors, dag_ids = out.strip().splitlines()[-2:]
    assert errors == "{}"
    assert dag_ids == str(["ab_approval", "ab_evaluate", "batch_score", "drift_monitor", "retrain"])


@pytest.mark.parametrize("dag_file", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_each_dag_file_parses_fast_without_heavy_imports(airflow_env, dag_file):
    """Each run is a fresh interpreter (a second parse in one process would find its imports
    cached); the fastest of three is the file's cost. The cost is the parse's CPU time, not
    its wall time: other work on a loaded 2-core machine stretches the wall clock, while
    the CPU a parse needs is the file's own."""
    timings = []
    for _ in range(3):
        out = _python(
            "import runpy, sys, time\n"
            "import airflow.sdk\n"  # Airflow itself first: the file's own cost is measured
            "start = time.process_time()\n"
            f"runpy.run_path({str(dag_file)!r})\n"
            "print(time.process_time() - start)\n"
            "print([m for m in ('pandas', 'mlflow', 'pycaret', 'sklearn', 'scipy') "
            "if m in sys.modules])",
            airflow_env,
        )
        seconds, heavy = out.strip().splitlines()[-2:]
        assert heavy == "[]"
        timings.append(float(seconds))
    assert min(timings) < 0.5, timings


def test_drift_monitor_emits_the_drift_asset_only_for_a_drifted_batch(airflow_env, settings):
    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
    }
    replay(settings, "gradual")  # left in the landing folder: the DAG's first task ingests it
    engine = make_engine(settings.database_url)
    upgrade(engine)
    # an hour of served traffic, two hours ago: check_traffic tests that window once
    window = window_of(utcnow() - timedelta(hours=2), timedelta(hours=1))
    served = read_table(settings.data.path, settings.data)[settings.feature_columns].sample(
        300, random_state=3
    )
    write_log(engine, served_rows(settings.model.name, served, window.start, timedelta(hours=1)))

    clean = dag_test(env, "drift_monitor", {"batch": "1"})
    assert clean["state"] == "success"
    assert clean["tasks"]["announce_drift"] == "skipped"
    assert clean["events"] == []
    assert clean["tasks"]["check_traffic"] == "success"
    (traffic,) = recent_traffic_checks(engine, settings.model.name)
    assert traffic.rows == 300 and traffic.window_start == window.start.isoformat()

    drifted = dag_test(
        env, "drift_monitor", {"batch": 12}
    )  # an id as a number, as a JSON conf gives it
    assert drifted["tasks"]["announce_drift"] == "success"
    (event,) = drifted["events"]
    assert event["uri"].rstrip("/") == "driftloop://drift"
    assert event["extra"]["batch_id"] == 12 and event["extra"]["report_id"] == 2
    assert event["extra"]["model_version"] is None  # no Production version was bootstrapped here

    again = dag_test(env, "drift_monitor", {"batch": "12"})  # re-running a batch changes nothing
    assert again["tasks"]["announce_drift"] == "skipped"
    assert len(again["events"]) == 1
    assert len(ingest_landing(settings, make_engine(settings.database_url))) == 0
    assert len(recent_traffic_checks(engine, settings.model.name)) == 1  # checked once


def test_drift_monitor_checks_every_unchecked_batch_in_parallel_once(airflow_env, settings):
    """Without a ``batch`` parameter one run maps ``check_batch`` over every unchecked batch
    and announces the new drifts in one event; the next run finds nothing to check."""
    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
    }
    written = replay(settings, "gradual", n_batches=5, start_batch=3, strength=0.9)
    upgrade(make_engine(settings.database_url))
    before = int(  # events earlier tests left in this module's Airflow database
        _python(
            "from airflow.models.asset import AssetEvent\n"
            "from airflow.utils.session import create_session\n"
            "with create_session() as s: print(s.query(AssetEvent).count())",
            airflow_env,
        ).split()[-1]
    )

    first = dag_test(env, "drift_monitor", {})
    assert first["state"] == "success"
    assert first["mapped"]["check_batch"] == ["success"] * len(written)
    engine = make_engine(settings.database_url)
    from driftloop.stages.drift_check import recent_checks

    checks = recent_checks(engine, settings.model.name, 100)
    assert sorted(c.batch_id for c in checks) == list(range(1, len(written) + 1))
    drifted = sorted(c.report_id for c in checks if c.status == "drift")
    assert len(drifted) >= 2, [(c.batch_name, c.status) for c in checks]
    assert first["tasks"]["announce_drift"] == "success"
    (event,) = first["events"][before:]  # one event lists every drift the run found
    assert sorted(c["report_id"] for c in event["extra"]["drift_checks"]) == drifted
    newest = max(event["extra"]["drift_checks"], key=lambda c: c["batch_id"])
    assert (event["extra"]["batch_id"], event["extra"]["report_id"]) == (
        newest["batch_id"],
        newest["report_id"],
    )

    again = dag_test(env, "drift_monitor", {})
    assert again["state"] == "success"
    assert again["tasks"]["check_batch"] == "skipped"  # mapped over no batches
    assert again["tasks"]["announce_drift"] == "skipped"
    assert len(again["events"]) == before + 1  # no new event
    assert len(recent_checks(engine, settings.model.name, 100)) == len(written)


def test_dags_refuse_sqlite_when_celery_runs_the_tasks(airflow_env, settings):
    """Under CeleryExecutor the embedded SQLite database is an import error of every
    driftloop DAG, in the sentence ``driftloop config check`` prints."""
    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    }
    out = _python(
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "print(sorted(bag.dag_ids)); print(len(bag.import_errors))\n"
        "print(next(iter(bag.import_errors.values())).strip().splitlines()[-1])",
        env,
    )
    dag_ids, errors, first = out.strip().splitlines()[-3:]
    assert dag_ids == "[]" and errors == "5"
    assert "Airflow's executor is CeleryExecutor" in first and "database is SQLite" in first


def test_ml_tasks_run_in_another_interpreter_when_configured(airflow_env):
    env = {**airflow_env, "DRIFTLOOP_TRAINING__PYTHON": PYTHON}
    out = _python(
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "dag = bag.get_dag('retrain')\n"
        "for task_id in ('train', 'evaluate', 'register'):\n"
        "    print(task_id, type(dag.get_task(task_id)).__name__)",
        env,
    )
    kinds = dict(line.split() for line in out.strip().splitlines()[-3:])
    assert "External" in kinds["train"] and "External" in kinds["evaluate"]
    assert "External" not in kinds["register"]  # registry moves stay in Airflow's interpreter


def test_ab_evaluate_promotes_and_a_decaying_production_queues_retrain(airflow_env, settings):
    from datetime import UTC, datetime, timedelta

    from driftloop import registry
    from driftloop.stages.promotion import roles
    from tests.support.ab_traffic import send
    from tests.support.registry_home import production_and_staging

    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
    }
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    start = datetime.now(UTC) - timedelta(hours=2)
    send(settings, engine, registry.PRODUCTION, production, 1500, 0.55, seed=1, start=start)
    send(settings, engine, registry.STAGING, staging, 1500, 0.70, seed=2, start=start)
    # every DAG known to the metadata database and retrain switched on, as in a deployment, so
    # the decay event can queue it
    for command in (["dags", "reserialize"], ["dags", "unpause", "retrain"]):
        subprocess.run(
            [str(ROOT / ".venv/bin/airflow"), *command], env=env, check=True, capture_output=True
        )

    promoted = dag_test(env, "ab_evaluate", {})
    assert promoted["tasks"]["evaluate_test"] == "success"
    assert promoted["tasks"]["announce_decay"] == "skipped"
    assert roles(settings) == (staging, None)

    # the new Production decays: right 50% of the time today, against 80% out of sample
    from tests.support.performance import known_reference

    known_reference(settings, engine, staging, 0.80)
    today = datetime.now(UTC).replace(hour=0, minute=1, second=0, microsecond=0)
    send(settings, engine, registry.PRODUCTION, staging, 500, 0.50, seed=4, start=today)
    decayed = dag_test(env, "ab_evaluate", {})
    assert decayed["tasks"]["announce_decay"] == "success"
    (event,) = [e for e in decayed["events"] if e["uri"].rstrip("/") == "driftloop://decay"]
    assert event["extra"]["model_version"] == staging and event["extra"]["current"] < 0.6
    assert event["extra"]["reference"] == 0.8 and event["extra"]["scope"] == "day"
    assert "retrain" in decayed["queued"]  # the scheduler starts retrain from this queue
