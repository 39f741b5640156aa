"""The demo on the CeleryExecutor: one home for what the loop needs to run its DAGs on Celery
workers (the full-stack test's set-up, the compose file's ``celery`` profile natively).

The LocalExecutor stays the demo's default; :class:`LoopCelery` says how to run on Celery
instead and does the three steps the loop needs: Airflow's settings, starting the workers
after the stack, and reading back where each task ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.celery_workers import CeleryWorker, CeleryWorkers, celery_env


@dataclass(frozen=True)
class CeleryRecord:
    """Where the tasks ran: each worker's task ids, and the workers Flower listed."""

    tasks: dict[str, list[str]] = field(default_factory=dict)
    flower_workers: list[str] = field(default_factory=list)
    flower_url: str | None = None


@dataclass(frozen=True)
class LoopCelery:
    """Run the DAGs on the CeleryExecutor: the broker, and the workers (by default one on
    ``default``, one on ``default`` and ``training``, one task slot each). Needs Airflow's
    database on PostgreSQL (the result backend)."""

    broker_url: str
    workers: tuple[CeleryWorker, ...] = (
        CeleryWorker("default", ("default",)),
        CeleryWorker("training", ("default", "training")),
    )
    flower: bool = False  # Flower beside the workers (the compose file's celery profile)

    def airflow_env(self, airflow_database: str | None) -> dict[str, str]:
        """Airflow's settings for this executor; refused before anything starts unless
        Airflow's database is PostgreSQL (Celery keeps its results there)."""
        if not (airflow_database or "").startswith("postgresql"):
            raise ValueError("the CeleryExecutor needs Airflow's database on PostgreSQL")
        return celery_env(self.broker_url, airflow_database or "")

    def start(
        self,
        services: contextlib.ExitStack,
        airflow: AirflowStack,
        say: Callable[[str], None],
    ) -> CeleryWorkers:
        """Start the workers (and Flower) on the running stack; ``services`` stops them before
        the stack, so tasks being stopped still reach its API."""
        workers = services.enter_context(CeleryWorkers(airflow, self.workers, flower=self.flower))
        say(f"Celery workers ready: {', '.join(w.name for w in self.workers)}")
        return workers

    def record(self, workers: CeleryWorkers) -> CeleryRecord:
        """What each worker ran and, with Flower, the workers it listed."""
        tasks = {w.name: workers.executed(w.name) for w in self.workers}
        if not self.flower:
            return CeleryRecord(tasks)
        return CeleryRecord(tasks, workers.flower_workers(), workers.flower_url)
