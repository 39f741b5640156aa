"""Airflow on Celery for real: two ``airflow celery worker`` processes on a real Redis broker,
the result backend on PostgreSQL, each task on the queue its DAG names.

The first test is the harness's own check (a task on the ``training`` queue runs on the worker
that serves it, and Flower sees both workers); the second runs driftloop's whole loop (drift,
retrain, Staging, A/B test, promotion) on that executor, with the assertions of the
LocalExecutor's full-stack test (tests/support/full_loop.py) and where each task ran.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from driftloop.demo.loop import LoopCelery
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.celery_workers import CeleryWorker, CeleryWorkers, celery_env
from driftloop.stack.processes import wait_until

from .support.full_loop import run_and_check_loop
from .support.postgres import require_postgres, temporary_database
from .support.redis import require_redis, temporary_redis_database

pytestmark = pytest.mark.integration

# one worker on the default queue only, one on both: only the second may take training tasks
WORKERS = (
    CeleryWorker("default", ("default",)),
    CeleryWorker("training", ("default", "training")),
)

QUEUES_DAG = """
from airflow.sdk import dag, task


@dag(dag_id="celery_queues", schedule=None, catchup=False)
def celery_queues():
    @task
    def light() -> int:
        return 1

    @task(queue="training")
    def heavy(value: int) -> int:
        return value + 1

    heavy(light())


celery_queues()
"""


@pytest.fixture
def broker_url() -> Iterator[str]:
    require_redis()
    with temporary_redis_database() as url:
        yield url


@pytest.mark.timeout(300)
def test_a_training_queue_task_runs_on_the_worker_that_serves_it(
    tmp_path: Path, broker_url: str
) -> None:
    require_postgres()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "queues.py").write_text(textwrap.dedent(QUEUES_DAG))
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(temporary_database("airflow_test"))
        airflow = stack.enter_context(
            AirflowStack(dags, tmp_path / "airflow", database, celery_env(broker_url, database))
        )
        workers = stack.enter_context(CeleryWorkers(airflow, WORKERS, flower=True))
        airflow.wait_for_dag("celery_queues", timeout=60)
        airflow.unpause("celery_queues")
        run_id = airflow.trigger("celery_queues")
        assert airflow.wait_for_run("celery_queues", run_id, timeout=120) == "success"

        queues = {
            ti["task_id"]: ti["queue"] for ti in airflow.task_instances("celery_queues", run_id)
        }
        assert queues == {"light": "default", "heavy": "training"}
        assert "heavy" in workers.executed("training")
        assert "heavy" not in workers.executed("default")
        assert sorted(workers.executed("default") + workers.executed("training")) == [
            "heavy",
            "light",
        ]

        def flower_workers() -> list[str] | None:
            try:
                found = requests.get(
                    f"{workers.flower_url}/api/workers?refresh=1", timeout=20
                ).json()
            except (requests.RequestException, ValueError):
                return None
            return sorted(found) if len(found) == 2 else None

        names = wait_until(flower_workers, 60, "Flower to list both workers")
        assert [name.split("@")[0] for name in names] == ["default", "training"]


@pytest.mark.timeout(900)
def test_the_loop_on_celery_with_two_workers(tmp_path: Path, monkeypatch, broker_url) -> None:
    started = time.monotonic()
    result = run_and_check_loop(tmp_path, monkeypatch, LoopCelery(broker_url, WORKERS))
    # every task ran on a worker; training and scoring of the challenger on the training queue
    instances = [ti for ti in result.task_instances if ti["state"] == "success"]
    queues = {(ti["dag_id"], ti["task_id"]): ti["queue"] for ti in instances}
    assert queues[("retrain", "train")] == queues[("retrain", "evaluate")] == "training"
    assert queues[("drift_monitor", "check_batch")] == "default"
    assert {q for (_, task_id), q in queues.items() if task_id not in ("train", "evaluate")} == {
        "default"
    }
    ran = result.celery_tasks
    assert "train" in ran["training"] and "evaluate" in ran["training"]
    assert "train" not in ran["default"] and ran["default"]  # both workers took tasks
    # every task that succeeded ran on one of the two workers (a retry would show twice)
    assert set(ran["default"] + ran["training"]) == {ti["task_id"] for ti in instances}
    # the drifting batches, checked in one run by mapped tasks
    checks = [ti for ti in instances if ti["task_id"] == "check_batch"]
    assert sorted(ti["map_index"] for ti in checks if ti["map_index"] >= 0)[-3:] == [0, 1, 2]
    print(f"[celery] loop on two workers: {time.monotonic() - started:.0f}s")
