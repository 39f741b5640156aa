"""A distributed executor refuses settings its workers cannot share, in one clear sentence:
from the library, from ``driftloop config check`` (no traceback) and as a DAG import error."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.orchestration.executor import airflow_executor, check_executor, is_local
from driftloop.settings_loader import ConfigError
from tests.support.cli import Cli, clean_env

POSTGRES = "postgresql+psycopg2://driftloop@db/driftloop"


def test_which_executors_run_tasks_on_one_machine():
    assert is_local("LocalExecutor") and is_local("airflow.executors.local_executor.LocalExecutor")
    assert not is_local("CeleryExecutor") and not is_local("KubernetesExecutor")
    assert not is_local("LocalExecutor,CeleryExecutor")  # any distributed one counts


def test_the_executor_is_read_as_airflow_reads_it(tmp_path: Path):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text("[core]\nexecutor = CeleryExecutor\n")
    assert airflow_executor({"AIRFLOW_HOME": str(tmp_path)}) == "CeleryExecutor"
    assert airflow_executor({"AIRFLOW_CONFIG": str(cfg), "AIRFLOW_HOME": "/nowhere"}) == (
        "CeleryExecutor"
    )
    environ = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    assert airflow_executor(environ) == "LocalExecutor"  # the variable beats the file
    assert airflow_executor({"AIRFLOW_HOME": str(tmp_path / "none")}) == "LocalExecutor"


def test_celery_refuses_sqlite_and_a_file_mlflow(settings):
    check_executor(settings, "LocalExecutor")  # one machine: the embedded defaults are fine
    with pytest.raises(ConfigError) as refused:
        check_executor(settings, "CeleryExecutor")
    message = str(refused.value)
    assert message.startswith("Airflow's executor is CeleryExecutor, whose tasks run on several")
    assert "driftloop's database is SQLite" in message and "DRIFTLOOP_DATABASE__URL" in message
    assert "not an MLflow server" in message and "DRIFTLOOP_MLFLOW__TRACKING_URI" in message
    assert "storage.home must also be one volume every worker mounts" in message

    shared = settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": POSTGRES}),
            "mlflow": settings.mlflow.model_copy(update={"tracking_uri": "http://mlflow:5000"}),
        }
    )
    check_executor(shared, "CeleryExecutor")
    only_sqlite = shared.model_copy(update={"database": settings.database})
    with pytest.raises(ConfigError, match="database is SQLite") as refused:
        check_executor(only_sqlite, "CeleryExecutor")
    assert "MLflow" not in str(refused.value)


def test_config_check_says_so_without_a_traceback(tmp_path: Path):
    run = Cli(clean_env(tmp_path / "home"), cwd=tmp_path)
    shown = run("config", "check", expect=2, AIRFLOW__CORE__EXECUTOR="CeleryExecutor")
    assert shown.startswith("error: Airflow's executor is CeleryExecutor"), shown
    assert "set database.url (DRIFTLOOP_DATABASE__URL) to a PostgreSQL URL" in shown
    fine = run(
        "config",
        "check",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        DRIFTLOOP_DATABASE__URL=POSTGRES,
        DRIFTLOOP_MLFLOW__TRACKING_URI="http://mlflow:5000",
    )
    assert fine.endswith("Airflow executor: CeleryExecutor\n"), fine
