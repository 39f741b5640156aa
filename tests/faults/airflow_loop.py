"""One Airflow stack for the Airflow-level faults (issue 28): the CeleryExecutor on a real Redis,
a default and a training worker, an MLflow server, driftloop's tables and Airflow's metadata on
PostgreSQL, version 1 bootstrapped into Production, and the drifting batches ready to land.

Starting all that costs about a minute, so the module's tests share it; a prediction server
can be started on it too (``server_env``), to ride out the same MLflow outage as the DAGs. Its
timeouts are shortened so that a fault plays out in seconds: a task whose heartbeat stops is
failed after 20 s (300 s by default), a crashed scheduler's tasks are adopted within seconds, a
retrain task is retried 8 s after failing, and Redis hands an unacknowledged task out again
after 120 s (longer than any training here). Training is cheap: one candidate model, two folds
(and two for the version's out-of-sample reference).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.demo import environment
from driftloop.settings_loader import load_settings
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.celery_workers import CeleryWorker, CeleryWorkers, celery_env
from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stack.processes import wait_until
from driftloop.stack.project import project_path
from driftloop.stages.ingest import ingest_landing
from driftloop.storage import RetrainRun
from tests.conftest import ROOT
from tests.support.postgres import require_postgres, temporary_database
from tests.support.redis import require_redis, temporary_redis_database

HEARTBEAT_TIMEOUT = 20  # seconds without a task heartbeat before the scheduler fails the try
RETRY_DELAY = 8  # seconds between a retrain task's failure and its retry
VISIBILITY_TIMEOUT = 120  # seconds before Redis hands an unacknowledged task out again
TRAINING_ENV = {
    "DRIFTLOOP_TRAINING__MODELS": json.dumps(["dt"]),
    "DRIFTLOOP_TRAINING__FOLDS": "2",
    "DRIFTLOOP_TRAINING__BUDGET_MINUTES": "0.5",
    # each test retrains once more while the previous challenger is in Staging, and must not be
    # held back by one left pending: a margin wide enough that each gate decides
    "DRIFTLOOP_TRAINING__REPLACE_STAGING": "true",
    "DRIFTLOOP_TRAINING__TOLERANCE": "0.2",
    "DRIFTLOOP_TRAINING__RETRIES": "1",
    "DRIFTLOOP_TRAINING__RETRY_DELAY_SECONDS": str(RETRY_DELAY),
    "DRIFTLOOP_MONITORING__REFERENCE_FOLDS": "2",  # the version's out-of-sample reference
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
AIRFLOW_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    # a crashed scheduler's job counts as dead after 15 s; its tasks are adopted then
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}


@dataclass
class AirflowLoop:
    """The running services and what the tests read and move."""

    airflow: AirflowStack
    mlflow: MlflowServer
    training: CeleryWorkers
    settings: Settings
    engine: sa.Engine
    home: Path
    env: dict[str, str]  # what the services and the CLI see (config, home, databases, MLflow)

    def server_env(self, **variables: str) -> dict[str, str]:
        """The environment of a prediction server on this loop's registry and database (the
        config file and overrides only, as a deployment gives it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        return env | self.env | {"DRIFTLOOP_PIN_CPUS": "0"} | variables

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """A paused DAG's running runs start no further task (the scheduler skips them)."""
        self.airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> tuple[str | None, int]:
        ti = self.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return ti["state"], int(ti["try_number"])

    def wait_for_any(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float
    ) -> None:
        """Until some instance of a (mapped) task is in one of ``states``."""
        wait_until(
            lambda: (
                True
                if any(
                    ti["task_id"] == task_id and ti["state"] in states
                    for ti in self.airflow.task_instances(dag_id, run_id)
                )
                else None
            ),
            timeout,
            f"an instance of {dag_id}.{task_id} in {sorted(states)}",
            interval=0.25,
            diagnostics=self.airflow.logs_tail,
        )

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float
    ) -> tuple[str, int]:
        """Until the task instance is in one of ``states`` (fails at once if its run ended)."""

        def probe() -> tuple[str, int] | None:
            state, tries = self.task_state(dag_id, run_id, task_id)
            if state in states:
                return str(state), tries
            run = self.airflow.dag_run(dag_id, run_id)["state"]
            if run in ("success", "failed"):
                raise AssertionError(f"run {run_id} {run} while {task_id} was {state}")
            return None

        return wait_until(
            probe,
            timeout,
            f"{dag_id}.{task_id} in {sorted(states)}",
            interval=0.25,
            diagnostics=self.airflow.logs_tail,
        )

    def land(self, folder: str, first: int, count: int) -> None:
        """Move ``count`` batch files of ``home/<folder>``, from the ``first``, to the landing
        folder (``stream``: 3 clean, then 3 drifting; ``traffic``: the held-back batches)."""
        for path in sorted((self.home / folder).iterdir())[first : first + count]:
            shutil.move(str(path), self.settings.storage.landing_dir / path.name)

    def land_and_ingest(self, folder: str) -> None:
        """One more labelled batch recorded, as drift_monitor would: new data for a retrain (on
        the same data it would be skipped as already trained on)."""
        self.land(folder, 0, 1)
        ingest_landing(self.settings, self.engine)

    def restart_mlflow(self) -> None:
        """A new MLflow server on the old one's store and port (clients keep their URI)."""
        old = self.mlflow
        self.mlflow = MlflowServer(old.backend_store_uri, old.workdir, port=old.port)
        self.mlflow.start()

    def replace_training_worker(self) -> None:
        """``kill -9`` of the training worker with its running task, and a new one started
        (as a supervisor restarts a lost worker)."""
        self.training.kill()
        self.training = CeleryWorkers(self.airflow, [CeleryWorker("training-2", ("training",))])
        self.training.start()

    def versions(self) -> list[dict[str, str]]:
        return registry.list_versions(self.settings)

    def retrain_runs(self) -> list[tuple[int, str, str | None]]:
        """Every recorded retrain decision: id, decision, model version."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(RetrainRun.id, RetrainRun.decision, RetrainRun.model_version).order_by(
                    RetrainRun.id
                )
            ).all()
        return [(row.id, str(row.decision), row.model_version) for row in rows]

    def task_log(self, run_id: str, task_id: str, attempt: int) -> str:
        """One try's task log as the worker wrote it (same machine, same AIRFLOW_HOME)."""
        logs = self.airflow.home / "logs" / "dag_id=retrain" / f"run_id={run_id}"
        found = list(logs.glob(f"task_id={task_id}/attempt={attempt}.log"))
        return found[0].read_text(errors="replace") if found else ""


@contextlib.contextmanager
def airflow_loop(folder: Path) -> Iterator[AirflowLoop]:
    """Everything above, started; every process stopped and every database dropped after."""
    require_postgres()
    require_redis()
    home = folder / "home"
    home.mkdir(parents=True)
    with contextlib.ExitStack() as services:
        airflow_db = services.enter_context(temporary_database("airflow_test"))
        driftloop_db = services.enter_context(temporary_database("driftloop_test"))
        broker = services.enter_context(temporary_redis_database())
        env = {
            **environment.environment(ROOT / "driftloop.demo.yaml", home, driftloop_db),
            **TRAINING_ENV,
        }
        started: list[AirflowLoop] = []  # the tests replace the MLflow server and a worker
        mlflow = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder / "mlflow")
        services.callback(lambda: [each.mlflow.stop() for each in started])
        services.enter_context(mlflow)
        env["DRIFTLOOP_MLFLOW__TRACKING_URI"] = mlflow.tracking_uri
        services.enter_context(environment.environment_applied(env))
        settings = load_settings()
        environment.prepare_stream(settings, lambda line: None)
        bootstrap = environment.start_cli(env, home, "bootstrap")
        services.callback(bootstrap.kill)
        airflow = services.enter_context(
            AirflowStack(
                project_path("dags"),
                folder / "airflow",
                airflow_db,
                extra_env={
                    **env,
                    **celery_env(broker, airflow_db, visibility_timeout=VISIBILITY_TIMEOUT),
                    **AIRFLOW_ENV,
                },
                startup_timeout=300,
            )
        )
        # left before the stack (ExitStack: last in, first out), so tasks can still report
        services.enter_context(
            CeleryWorkers(airflow, [CeleryWorker("default", ("default",), concurrency=2)])
        )
        training = services.enter_context(
            CeleryWorkers(airflow, [CeleryWorker("training", ("training",))])
        )
        services.callback(lambda: [each.training.stop() for each in started])
        for dag_id in ("drift_monitor", "retrain"):
            airflow.wait_for_dag(dag_id, timeout=120)
            airflow.unpause(dag_id)
        environment.finish_cli(bootstrap, "bootstrap", timeout=400)
        engine = sa.create_engine(settings.database_url)
        services.callback(engine.dispose)
        started.append(AirflowLoop(airflow, mlflow, training, settings, engine, home, env))
        yield started[0]


def describe_runs(loop: AirflowLoop, dag_id: str) -> list[dict[str, Any]]:
    """Every run of ``dag_id`` with its task states, for assertion messages."""
    return [
        {
            "run": run["dag_run_id"],
            "state": run["state"],
            "tasks": [
                (ti["task_id"], ti["map_index"], ti["state"], ti["try_number"])
                for ti in loop.airflow.task_instances(dag_id, run["dag_run_id"])
            ],
        }
        for run in loop.airflow.dag_runs(dag_id)
    ]
