"""The demo's CeleryExecutor set-up refuses what Celery cannot run on, before anything starts."""

from __future__ import annotations

import pytest

from driftloop.demo.executor import LoopCelery


@pytest.mark.parametrize("database", [None, "sqlite:////tmp/airflow.db"])
def test_celery_needs_airflow_on_postgresql(database: str | None) -> None:
    with pytest.raises(ValueError, match="needs Airflow's database on PostgreSQL"):
        LoopCelery("redis://127.0.0.1:6379/0").airflow_env(database)


def test_celery_settings_keep_results_in_airflow_database() -> None:
    database = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"
    env = LoopCelery("redis://127.0.0.1:6379/3").airflow_env(database)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{database}"
