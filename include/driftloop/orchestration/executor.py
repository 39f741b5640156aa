"""Which Airflow executor runs driftloop's tasks, and what a distributed one demands.

With the LocalExecutor every task runs on the scheduler's machine, so SQLite files and local
folders are shared by all of them. With Celery (or Kubernetes) each task may run on another
machine: driftloop's database must be a server (PostgreSQL) every worker reaches, MLflow must be
its server (runs, models and artifacts go through its HTTP API), and ``storage.home`` must be a
volume every worker mounts at the same path (batches, reports, profiles, training sets). The
first two are checked here, where DAGs and tasks open their settings and in ``driftloop config
check``; the volume cannot be seen from one machine, so the docs say it (docs/scaling.md).

The executor is read as Airflow reads it, without importing Airflow (the CLI stays fast):
``AIRFLOW__CORE__EXECUTOR``, else ``[core] executor`` of ``$AIRFLOW_CONFIG`` or
``$AIRFLOW_HOME/airflow.cfg``, else Airflow's default, the LocalExecutor.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from driftloop.config import Settings
from driftloop.settings_loader import ConfigError

LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def airflow_executor(environ: dict[str, str] | None = None) -> str:
    """The ``[core] executor`` setting Airflow would use in this environment."""
    environ = dict(os.environ if environ is None else environ)
    if environ.get("AIRFLOW__CORE__EXECUTOR"):
        return environ["AIRFLOW__CORE__EXECUTOR"].strip()
    home = Path(environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    config_file = Path(environ.get("AIRFLOW_CONFIG") or home / "airflow.cfg").expanduser()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_file)
    except configparser.Error:
        return "LocalExecutor"  # Airflow itself would refuse the file; not ours to judge
    return parser.get("core", "executor", fallback="LocalExecutor").strip() or "LocalExecutor"


def is_local(executor: str) -> bool:
    """Whether every executor named (a comma-separated list, names or class paths) runs
    tasks on the scheduler's machine."""
    names = [part.strip().rsplit(".", 1)[-1] for part in executor.split(",") if part.strip()]
    return all(name in LOCAL_EXECUTORS for name in names)


def check_executor(settings: Settings, executor: str | None = None) -> None:
    """Refuse, with one sentence per problem, settings that workers on several machines cannot
    share: SQLite for driftloop's database, and an MLflow that is not a server."""
    executor = executor or airflow_executor()
    if is_local(executor):
        return
    problems = []
    if settings.database_url.startswith("sqlite"):
        problems.append(
            f"driftloop's database is SQLite ({settings.database_url}), a file only one machine "
            "sees: set database.url (DRIFTLOOP_DATABASE__URL) to a PostgreSQL URL that every "
            "worker reaches"
        )
    if not settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        problems.append(
            f"mlflow.tracking_uri is {settings.mlflow_tracking_uri}, not an MLflow server: set "
            "it (DRIFTLOOP_MLFLOW__TRACKING_URI) to the http(s):// URL of the MLflow server, "
            "through which every worker logs runs, loads models and stores artifacts"
        )
    if problems:
        raise ConfigError(
            f"Airflow's executor is {executor}, whose tasks run on several machines, and "
            + "; ".join(problems)
            + " (storage.home must also be one volume every worker mounts at the same path: "
            "docs/scaling.md)."
        )
