"""Alerts from where they are really sent: the DAGs run under ``dag.test()`` with
``alerts.webhook_url`` pointing at a receiver in this test process."""

from __future__ import annotations

import pytest

from driftloop import registry
from driftloop.stack.processes import free_port
from driftloop.storage import RetrainRun, make_engine, session_scope, upgrade
from driftloop.stream import replay

from .conftest import ROOT
from .registry_home import production_and_staging
from .test_alerts import receiver  # noqa: F401  (the fixture is used by name)
from .test_dags import _dag_test, airflow_env  # noqa: F401


def _env(airflow_env, settings, url: str, **extra: str) -> dict[str, str]:  # noqa: F811
    return {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
        "DRIFTLOOP_ALERTS__WEBHOOK_URL": url,
        **extra,
    }


def test_drift_monitor_sends_drift_detected(airflow_env, settings, receiver):  # noqa: F811
    url, received = receiver
    replay(settings, "gradual")
    upgrade(make_engine(settings.database_url))
    run = _dag_test(_env(airflow_env, settings, url), "drift_monitor", {"batch": 12})
    assert run["tasks"]["announce_drift"] == "success", run
    (message,) = received
    assert message["event"] == "drift_detected" and message["model"] == settings.model.name
    assert message["details"]["batch_id"] == 12


def test_retrain_with_mlflow_down_fails_clearly_alerts_and_leaves_the_registry(
    airflow_env,  # noqa: F811
    settings,
    receiver,  # noqa: F811
):
    """The tracking server unreachable: the first task fails, its failure callback sends
    retrain_failed naming the server, nothing is recorded as a decision, and the registry
    (the real one, which the DAG could not reach) is as it was."""
    url, received = receiver
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    dead = f"http://127.0.0.1:{free_port()}"
    env = _env(
        airflow_env,
        settings,
        url,
        DRIFTLOOP_MLFLOW__TRACKING_URI=dead,
        DRIFTLOOP_TRAINING__RETRIES="0",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="2",
    )
    run = _dag_test(env, "retrain", {"drift_check_id": None})
    assert run["state"] == "failed", run
    assert run["tasks"]["assemble_training_set"] == "failed", run["tasks"]
    (message,) = received
    assert message["event"] == "retrain_failed"
    assert message["details"]["task_id"] == "assemble_training_set"
    assert dead.removeprefix("http://") in message["summary"], message["summary"]
    with session_scope(engine) as session:
        assert session.query(RetrainRun).count() == 0
    assert [v["version"] for v in registry.list_versions(settings)] == [production, staging]
    from driftloop.promotion import roles

    assert roles(settings) == (production, staging)


@pytest.mark.parametrize("action", ["evaluate", "promote"])
def test_ab_evaluate_and_promotion_with_mlflow_down_change_nothing(settings, monkeypatch, action):
    """Outside serving an unreachable registry is an error with the server's address, and
    no evaluation, audit record or role change is left behind."""
    from driftloop.ab.evaluate import evaluate
    from driftloop.promotion import history, promote, roles
    from driftloop.storage import ABEvaluation

    from .ab_traffic import send

    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    send(settings, engine, registry.PRODUCTION, production, 300, 0.5, seed=1)
    send(settings, engine, registry.STAGING, staging, 300, 0.9, seed=2)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    dead = f"http://127.0.0.1:{free_port()}"
    down = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": dead})}
    )
    with pytest.raises(Exception, match=dead.removeprefix("http://")):
        if action == "evaluate":
            evaluate(down, engine)
        else:
            promote(down, engine, "cli:tester", "while MLflow is down")
    registry.configure(settings)  # back to the real registry
    assert roles(settings) == (production, staging)
    assert history(engine, settings.model.name) == []
    with session_scope(engine) as session:
        assert session.query(ABEvaluation).count() == 0
