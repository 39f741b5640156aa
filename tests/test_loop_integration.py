"""The drift-to-Staging loop end to end, under real components on PostgreSQL.

Unit tests check each step alone; this one checks the wiring between them, which only exists
when the parts run as they do in production: the `driftloop` CLI sets the loop up, the real
Airflow scheduler, dag-processor, triggerer and api-server run `drift_monitor`, its Asset event
starts `retrain`, and every task reaches a real `mlflow server` over HTTP (registry and proxied
artifacts). Airflow's metadata, MLflow's backend store and driftloop's tables each get their own
uniquely named PostgreSQL database, all dropped afterwards, and no process outlives the test.

The scenario is a sudden concept shift (5 of 11 features move and the labels move with them),
so the bootstrapped model is clearly wrong on the new data and a retrained challenger must beat
it on the gate holdout: Staging is the expected outcome, not merely an allowed one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import psutil
import pytest
import sqlalchemy as sa
import yaml

from driftloop.events import DRIFT_ASSET_URI
from driftloop.storage import Batch, DriftCheck, RetrainRun, make_engine, session_scope

from .airflow_stack import VENV_BIN, AirflowStack, wait_until
from .mlflow_server import MlflowServer
from .postgres import POSTGRES_ADMIN_URL, require_postgres, temporary_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "driftloop.yaml"
DRIFTLOOP = str(VENV_BIN / "driftloop")
MODEL = yaml.safe_load(CONFIG.read_text())["model"]["name"]
SHIFTED = ("alcohol", "pH", "density", "residual sugar", "chlorides")
REPLAY = [
    "stream",
    "replay",
    "--scenario",
    "concept",
    "--start-batch",
    "3",
    "--batches",
    "8",
    *[arg for feature in SHIFTED for arg in ("--shift-feature", feature)],
]
CLI_TIMEOUT = {"bootstrap": 240.0}  # PyCaret setup and three models; everything else is quick


def _driftloop(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run the CLI as a user would; on failure or timeout, fail with its output.

    A session of its own lets a timeout kill the whole tree (PyCaret's joblib workers too).
    """
    timeout = CLI_TIMEOUT.get(args[0], 120.0)
    process = subprocess.Popen(
        [DRIFTLOOP, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"`driftloop {' '.join(args)}` took over {timeout:.0f}s:\n{output[-3000:]}")
    assert process.returncode == 0, (
        f"`driftloop {' '.join(args)}` exited with {process.returncode}:\n{output[-3000:]}"
    )
    return output


def _task_logs(stack: AirflowStack, dag_id: str, run_id: str, lines: int = 25) -> str:
    """The end of every task log of one run, so a failure explains itself."""
    tails = []
    for folder in (stack.home / "logs").glob(f"dag_id={dag_id}/run_id=*"):
        if folder.name != f"run_id={run_id}":
            continue
        for log in sorted(folder.rglob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"----- {log.relative_to(folder)} -----\n" + "\n".join(text))
    return "\n".join(tails) or "(no task logs)"


def _run_to_success(stack: AirflowStack, dag_id: str, run_id: str, timeout: float) -> None:
    """Wait for a run and assert it succeeded, with task states and logs if it did not."""
    state = stack.wait_for_run(dag_id, run_id, timeout=timeout)
    tasks = {ti["task_id"]: ti["state"] for ti in stack.task_instances(dag_id, run_id)}
    assert state == "success", f"{dag_id} {run_id}: {state}, tasks {tasks}\n" + _task_logs(
        stack, dag_id, run_id
    )


def _trigger_drift_monitor(stack: AirflowStack, batch: str) -> tuple[str, dict[str, str]]:
    """Check one batch through the DAG; return the run id and its task states."""
    run_id = stack.trigger("drift_monitor", {"batch": batch})
    _run_to_success(stack, "drift_monitor", run_id, timeout=180)
    return run_id, {
        ti["task_id"]: ti["state"] for ti in stack.task_instances("drift_monitor", run_id)
    }


def _leftover_processes(marker: str) -> list[str]:
    """Airflow or MLflow processes of this test (found by its temporary folder) still alive.

    Matching on the folder, in the command line or the environment, ignores processes of other
    sessions that may be running tests on the same machine at the same time.
    """
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if process.info["status"] == psutil.STATUS_ZOMBIE or not re.search(
                "airflow|mlflow", command
            ):
                continue
            if marker in command or any(marker in v for v in process.environ().values()):
                found.append(f"{process.pid} {command}")
    return found


def _existing_databases(names: list[str]) -> list[str]:
    """Which of the named databases still exist on the server."""
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


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Drop the caller's DRIFTLOOP_* and MLFLOW_* variables: only the test's own may count.

    The CLI and every Airflow component inherit this process's environment.
    """
    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (
            name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL"
        ):
            monkeypatch.delenv(name)
    yield


def test_drift_triggers_retrain_and_a_better_challenger_reaches_staging(
    tmp_path: Path, clean_environment: None
) -> None:
    """Old model clearly wrong after a concept shift: drift -> event -> retrain -> Staging."""
    require_postgres()
    started = time.monotonic()
    databases: list[str] = []
    with contextlib.ExitStack() as resources:

        def database(prefix: str) -> str:
            url = resources.enter_context(temporary_database(prefix))
            databases.append(str(sa.engine.make_url(url).database))
            return url

        airflow_db, mlflow_db, driftloop_db = (
            database(prefix) for prefix in ("airflow_test", "mlflow_test", "driftloop_test")
        )
        server = resources.enter_context(MlflowServer(mlflow_db, tmp_path / "mlflow"))
        driftloop_env = {
            "DRIFTLOOP_CONFIG": str(CONFIG),  # the CLI runs in tmp_path, away from the file
            "DRIFTLOOP_STORAGE__HOME": str(tmp_path / "home"),
            "DRIFTLOOP_DATABASE__URL": driftloop_db,
            "DRIFTLOOP_MLFLOW__TRACKING_URI": server.tracking_uri,
            "DRIFTLOOP_DRIFT__SCHEDULE": "null",  # drift_monitor runs only when triggered
            "DRIFTLOOP_TRAINING__MODELS": json.dumps(["et", "rf", "lr"]),
            "DRIFTLOOP_TRAINING__BUDGET_MINUTES": "0.5",
            "DRIFTLOOP_TRAINING__FOLDS": "3",
        }

        # 1. Set-up, as a user would do it. Ingestion is left to drift_monitor's first task.
        cli_env = {**os.environ, **driftloop_env}
        _driftloop(cli_env, tmp_path, "db", "upgrade")
        _driftloop(cli_env, tmp_path, "bootstrap")
        replayed = _driftloop(cli_env, tmp_path, *REPLAY)
        assert len(list((tmp_path / "home" / "landing").iterdir())) == 8, replayed
        print(f"\n[loop] set-up done after {time.monotonic() - started:.0f}s")

        # 2. drift_monitor: no event without drift, one event with its lineage on drift.
        stack = resources.enter_context(
            AirflowStack(
                ROOT / "dags", tmp_path / "airflow-home", airflow_db, extra_env=driftloop_env
            )
        )
        for dag_id in ("drift_monitor", "retrain"):
            stack.wait_for_dag(dag_id, timeout=90)
            stack.unpause(dag_id)
        print(f"[loop] Airflow up after {time.monotonic() - started:.0f}s")

        _, tasks = _trigger_drift_monitor(stack, "1")
        assert tasks["announce_drift"] == "skipped", tasks
        assert stack.asset_events(DRIFT_ASSET_URI) == []

        run_id, tasks = _trigger_drift_monitor(stack, "4")
        assert tasks["announce_drift"] == "success", tasks
        events = stack.asset_events(DRIFT_ASSET_URI)
        assert len(events) == 1, events
        event = events[0]
        assert event["source_dag_id"] == "drift_monitor" and event["source_run_id"] == run_id
        extra = event["extra"]
        assert extra["batch_id"] == 4 and extra["model_version"] == "1", extra
        report_id = extra["report_id"]
        assert isinstance(report_id, int), extra

        engine = make_engine(driftloop_db)
        resources.callback(engine.dispose)
        with session_scope(engine) as session:
            checks = {
                check.batch_id: check for check in session.scalars(sa.select(DriftCheck)).all()
            }
            accepted = session.scalars(sa.select(Batch.id).where(Batch.status == "accepted"))
            assert sorted(accepted) == list(range(1, 9)), "drift_monitor ingested the landing"
        assert sorted(checks) == [1, 4]
        assert checks[1].status == "no_drift"
        assert checks[4].status == "drift" and checks[4].id == report_id
        assert checks[4].target_drift and checks[4].model_version == "1"
        print(f"[loop] drift announced after {time.monotonic() - started:.0f}s")

        # 3. The event starts retrain, which ends in a gate decision: Staging.
        def retrain_run() -> dict[str, Any] | None:
            runs = stack.dag_runs("retrain")
            return runs[0] if runs else None

        retrain = wait_until(retrain_run, 60, "the asset-triggered run of retrain")
        assert retrain["run_type"] == "asset_triggered", retrain
        _run_to_success(stack, "retrain", retrain["dag_run_id"], timeout=420)
        assert len(stack.dag_runs("retrain")) == 1
        print(f"[loop] retrain done after {time.monotonic() - started:.0f}s")

        with session_scope(engine) as session:
            runs = session.scalars(sa.select(RetrainRun).order_by(RetrainRun.id)).all()
        assert [run.trigger for run in runs] == ["bootstrap", "drift"], runs
        decision = runs[1]
        print(f"[loop] gate: {decision.decision}: {decision.reason}")
        assert decision.decision == "staging", decision.reason
        assert decision.drift_check_id == report_id
        assert decision.model_version == "2" and decision.production_version == "1"
        assert decision.metric == "accuracy"
        assert decision.challenger_score > decision.production_score, decision.reason

        client = mlflow.MlflowClient(tracking_uri=server.tracking_uri)
        staging = client.get_model_version_by_alias(MODEL, "staging")
        assert staging.version == "2" and staging.current_stage == "Staging"
        assert staging.tags["driftloop.drift_report_id"] == str(report_id)
        assert staging.tags["driftloop.drift_batch_id"] == "4"
        assert staging.tags["driftloop.data_digest"] and staging.tags["driftloop.profile_id"]
        assert staging.tags["driftloop.gate"] == "staging"
        assert staging.run_id == decision.mlflow_run_id
        production = client.get_model_version_by_alias(MODEL, "production")
        assert production.version == "1" and production.current_stage == "Production"

        run = client.get_run(staging.run_id)
        assert {"cv_accuracy", "holdout_accuracy"} <= set(run.data.metrics), run.data.metrics
        assert run.data.params["trigger"] == "drift"
        artifacts = {a.path for a in client.list_artifacts(staging.run_id)} | {
            a.path
            for folder in ("plots", "profile", "training_data")
            for a in client.list_artifacts(staging.run_id, folder)
        }
        assert {
            "compare_models.csv",
            "plots/confusion_matrix.png",
            "profile/profile.npz",
            "training_data/train.csv",
        } <= artifacts, artifacts
        # MLflow 3 keeps the model as a logged model of the run, outside the run's own artifact
        # folder; its files come through the server's artifact proxy all the same. (The client
        # is explicit: `mlflow.artifacts` would resolve `models:/` against ./mlflow.db.)
        # The REST answer leaves the version's model_id empty; its source is `models:/<id>`.
        assert staging.source.startswith("models:/m-"), staging.source
        logged = client.get_logged_model(staging.source.removeprefix("models:/"))
        assert logged.source_run_id == staging.run_id and logged.name == "model"
        model_files = {
            Path(a.path).name for a in client.list_logged_model_artifacts(logged.model_id)
        }
        assert {"MLmodel", "model.pkl"} <= model_files, model_files

        marker = str(tmp_path)
    # Everything is stopped and dropped by now, even after a failure above.
    assert wait_until(
        lambda: None if _leftover_processes(marker) else True,
        15,
        "the test's Airflow and MLflow processes to exit",
        diagnostics=lambda: "\n".join(_leftover_processes(marker)),
    )
    assert _existing_databases(databases) == []
    print(f"[loop] total {time.monotonic() - started:.0f}s")
