"""Airflow on Celery for real: two ``airflow celery worker`` processes on a real Redis broker,
the result backend on PostgreSQL, each task on the queue its DAG names, Flower beside them.

driftloop's whole loop (drift, retrain, Staging, A/B test, promotion) runs on that executor
with every assertion of tests/support/full_loop.py, and where each task ran: the training
tasks on the one worker that serves the ``training`` queue, the rest on ``default``. This is
the loop test on PostgreSQL; the LocalExecutor runs the same loop in ``make demo`` (SQLite)
and the plugin's and the Airflow harness's tests (PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftloop.demo.loop import LoopCelery
from driftloop.stack.celery_workers import CeleryWorker
from tests.support.full_loop import run_and_check_loop
from tests.support.redis import require_redis, temporary_redis_database

pytestmark = pytest.mark.integration

# one worker on the default queue only, one on both: only the second may take training tasks
WORKERS = (
    CeleryWorker("default", ("default",)),
    CeleryWorker("training", ("default", "training")),
)


@pytest.fixture
def broker_url() -> Iterator[str]:
    require_redis()
    with temporary_redis_database() as url:
        yield url


@pytest.mark.timeout(900)
def test_the_loop_on_celery_with_two_workers(tmp_path: Path, monkeypatch, broker_url) -> None:
    started = time.monotonic()
    celery = LoopCelery(broker_url, WORKERS, flower=True)
    result = run_and_check_loop(tmp_path, monkeypatch, celery)
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
    # Flower, as the compose file's celery profile runs it, sees both workers
    assert result.flower_workers == ["default", "training"]
    print(f"[celery] loop on two workers: {time.monotonic() - started:.0f}s")
