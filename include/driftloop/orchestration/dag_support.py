"""What the DAG files share: the config they read, their default arguments (retries and, where
a DAG has one, its failure alert) and the settings and database a task opens, for its model
(which model each file builds for: :mod:`driftloop.orchestration.model_dags`).

DAG files import this when the scheduler parses them, so it imports no more than they did
before (the settings loader: pydantic and yaml); the database and the alerts are imported
when a task or a callback runs.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.config import Settings
from driftloop.settings_loader import DEFAULT_CONFIG_NAME, config_path, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

RETRY_DELAY = timedelta(seconds=30)
TRAINING_QUEUE = "training"
"""The Celery queue of the tasks that train and score models (``retrain``'s train and
evaluate, of every model): served by workers with the ML stack and more memory. Everything
else runs on ``[operators] default_queue`` (``default``). The LocalExecutor ignores queues."""


def dag_config(dag_file: str) -> str:
    """The config a DAG file reads: ``$DRIFTLOOP_CONFIG``, else the project's ``driftloop.yaml``
    beside its ``dags/`` folder (the scheduler's working directory is not the project's). A
    string, so tasks can take it as an argument."""
    return str(config_path(default=Path(dag_file).resolve().parents[1] / DEFAULT_CONFIG_NAME))


def dag_settings(config: str, model: str | None = None) -> Settings:
    """A model's settings as a DAG file sees them (for the schedule and the arguments);
    settings a distributed executor's workers cannot share are an import error of the DAG."""
    return _checked(load_settings(config, model))


def default_args(
    retries: int = 2,
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    retry_delay: timedelta = RETRY_DELAY,
) -> dict[str, Any]:
    """Every task's arguments: retries (30 s apart unless said), and the failure callback if
    there is one."""
    args: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay}
    if on_failure is not None:
        args["on_failure_callback"] = on_failure
    return args


def open_task(config: str, model: str | None = None) -> tuple[Settings, sa.Engine]:
    """What a task works with: its model's settings, read when it runs, and driftloop's
    database (``model`` as ``load_settings`` takes it: None for a config without ``models:``)."""
    from driftloop.database import open_database

    settings = _checked(load_settings(config, model))
    return settings, open_database(settings)


def _checked(settings: Settings) -> Settings:
    """The settings, once they suit the executor running the tasks
    (``driftloop.orchestration.executor``)."""
    from driftloop.orchestration.executor import check_executor

    check_executor(settings)
    return settings


def retrain_failure_alert(
    config: str, model: str | None = None
) -> Callable[[dict[str, Any]], None]:
    """A failure callback: a retrain task that failed (after its retries) is an alert."""
    return partial(_alert_retrain_failure, config, model)


def _alert_retrain_failure(config: str, model: str | None, context: dict[str, Any]) -> None:
    from driftloop.stages import alerts

    task = context["task_instance"]
    alerts.send(
        load_settings(config, model),
        "retrain_failed",
        f"retrain task {task.task_id} failed in run {task.run_id}: {context.get('exception')}",
        {"dag_id": task.dag_id, "task_id": task.task_id, "run_id": task.run_id},
    )
