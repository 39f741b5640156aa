"""Airflow on Celery: the settings that switch an :class:`AirflowStack` to the CeleryExecutor,
and ``airflow celery worker`` processes (optionally Flower) beside it.

The scheduler only puts task workloads on the broker's queues (Redis or RabbitMQ); the workers
take them, each from the queues it serves, and run them as the LocalExecutor would: a task
process that talks to the api-server's Execution API. Task states go through that API and the
Celery results to the result backend (PostgreSQL, Airflow's own database). Every worker, like
every other component, is a separate process in a session of its own, stopped with all of its
descendants.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from driftloop.stack.airflow_stack import AIRFLOW, AirflowStack
from driftloop.stack.processes import (
    Service,
    StackError,
    free_port,
    kill_session,
    spawn,
    tail,
    terminate_session,
    wait_until,
)

DEFAULT_QUEUE = "default"
VISIBILITY_TIMEOUT = 6 * 3600  # seconds: longer than any training (airflow.cfg says the same)
# a worker logs "<name>@<host> ready." once it consumes from its queues
_READY = re.compile(rb"\S+@\S+ ready\.")


@dataclass(frozen=True)
class CeleryWorker:
    """One ``airflow celery worker``: its name, the queues it serves, its task slots."""

    name: str
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    concurrency: int = 1


def celery_env(
    broker_url: str, sql_alchemy_conn: str, visibility_timeout: int = VISIBILITY_TIMEOUT
) -> dict[str, str]:
    """Airflow settings for the CeleryExecutor: the broker, and the result backend on
    Airflow's own PostgreSQL database (``db+`` + its SQLAlchemy URL).

    A worker that dies mid-task must not lose it: a message is acknowledged only when its task
    ends (``task_acks_late``), so Redis hands an unacknowledged one out again after
    ``visibility_timeout``; it must exceed the longest task (training), else a task still
    running is handed to a second worker (the Execution API then refuses that copy). The task
    itself runs again sooner: its heartbeat stops, the scheduler fails that try after
    ``[scheduler] task_instance_heartbeat_timeout`` and retries it (``training.retries``).
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql_alchemy_conn}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        # the scheduler asks the result backend for task states with one process, not many
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(visibility_timeout),
    }


@dataclass
class _Running:
    worker: CeleryWorker
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


class CeleryWorkers(Service):
    """Celery workers (and Flower) for a started :class:`AirflowStack` on the CeleryExecutor.

    Enter it after the stack and leave it before (``contextlib.ExitStack`` does both), so that
    tasks being stopped can still report to the api-server.
    """

    def __init__(
        self,
        stack: AirflowStack,
        workers: Sequence[CeleryWorker],
        flower: bool = False,
        startup_timeout: float = 120.0,
        stop_grace: float = 15.0,
    ) -> None:
        self.stack, self.workers, self.flower = stack, tuple(workers), flower
        self.startup_timeout, self.stop_grace = startup_timeout, stop_grace
        self.flower_port = 0
        self._running: list[_Running] = []

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def log_path(self, name: str) -> Path:
        return self.stack.home / f"logs-celery-{name}.log"

    def start(self) -> None:
        """Start every worker and wait until each consumes from its queues."""
        if not self.stack.env.get("AIRFLOW__CORE__EXECUTOR", "").endswith("CeleryExecutor"):
            raise StackError("the Airflow stack does not run the CeleryExecutor (celery_env)")
        for worker in self.workers:
            command = [
                AIRFLOW,
                "celery",
                "worker",
                "--queues",
                ",".join(worker.queues),
                "--concurrency",
                str(worker.concurrency),
                "--celery-hostname",
                f"{worker.name}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
            # each worker's log server needs a port of its own on a shared machine
            env = {**self.stack.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            self._spawn(worker, command, env)
        if self.flower:
            self.flower_port = free_port()
            command = [AIRFLOW, "celery", "flower", "--port", str(self.flower_port)]
            command += ["--hostname", "127.0.0.1"]
            # Flower 2 serves its HTTP API only with authentication, or with this set: the
            # stack listens on 127.0.0.1 only
            env = {**self.stack.env, "FLOWER_UNAUTHENTICATED_API": "true"}
            self._spawn(CeleryWorker("flower", ()), command, env)
        wait_until(
            self._ready,
            self.startup_timeout,
            "every Celery worker to report ready",
            diagnostics=self.logs_tail,
        )

    def _spawn(self, worker: CeleryWorker, command: list[str], env: dict[str, str]) -> None:
        log_path = self.log_path(worker.name)
        process, log_file = spawn(command, env, self.stack.home, log_path)
        self._running.append(_Running(worker, process, log_path, log_file))

    def _ready(self) -> bool | None:
        for running in self._running:
            code = running.process.poll()
            if code is not None:
                raise StackError(
                    f"celery {running.worker.name} exited with {code}:\n{tail(running.log_path)}"
                )
        workers = [r for r in self._running if r.worker.name != "flower"]
        if all(_READY.search(r.log_path.read_bytes()) for r in workers):
            return True
        return None

    def flower_workers(self, timeout: float = 60.0) -> list[str]:
        """The worker names Flower lists, once it lists every worker (it learns of them from
        the broker's events, so a moment after they start)."""
        import requests

        def listed() -> list[str] | None:
            try:
                found = requests.get(f"{self.flower_url}/api/workers?refresh=1", timeout=20).json()
            except (requests.RequestException, ValueError):
                return None
            names = sorted(name.split("@")[0] for name in found)
            return names if len(names) == len(self.workers) else None

        if not self.flower:
            raise StackError("these workers were started without Flower")
        return wait_until(listed, timeout, "Flower to list every worker")

    def executed(self, name: str) -> list[str]:
        """The task ids a worker was given, in order, as its log records them."""
        text = self.log_path(name).read_text(errors="replace")
        return re.findall(r"Executing workload in Celery: .*?task_id='([^']+)'", text)

    def logs_tail(self, lines: int = 30) -> str:
        return "\n".join(
            f"----- celery {r.worker.name} ({r.log_path}) -----\n{tail(r.log_path, lines)}"
            for r in self._running
        )

    def kill(self) -> None:
        """SIGKILL to every worker's session at once, tasks included: a machine that dies,
        with no warm shutdown to hand unfinished messages back. Idempotent."""
        running, self._running = self._running, []
        for each in running:
            kill_session(each.process)
            each.log_file.close()

    def stop(self) -> None:
        """SIGTERM to every worker's session (a warm shutdown), then SIGKILL. Idempotent."""
        running, self._running = self._running, []
        deadline = time.monotonic() + self.stop_grace
        for each in running:
            terminate_session(each.process)
        for each in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                each.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for each in running:
            kill_session(each.process)
            each.log_file.close()
