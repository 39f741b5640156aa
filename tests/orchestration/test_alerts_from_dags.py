"""Alerts from where they are really sent: the DAGs run under ``dag.test()`` with
``alerts.webhook_url`` pointing at a receiver in this test process."""

from __future__ import annotations

import json

import pytest

from driftloop import registry
from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.stack.processes import free_port
from driftloop.storage import RetrainRun, make_engine, session_scope
from tests.conftest import ROOT
from tests.support.airflow_dags import dag_test, drifted
from tests.support.registry_home import production_and_staging


def _env(airflow_env, settings, url: str, **extra: str) -> dict[str, str]:
    return {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
        "DRIFTLOOP_ALERTS__WEBHOOK_URL": url,
        **extra,
    }


def test_drift_monitor_sends_drift_detected(airflow_env, settings, receiver):
    url, received = receiver
    replay(settings, "gradual")
    upgrade(make_engine(settings.database_url))
    run = dag_test(_env(airflow_env, settings, url), "drift_monitor", {"batch": 12})
    assert run["tasks"]["announce_drift"] == "success", run
    (message,) = received
    assert message["event"] == "drift_detected" and message["model"] == settings.model.name
    assert message["details"]["batch_id"] == 12


def test_retrain_with_mlflow_down_fails_clearly_alerts_and_leaves_the_registry(
    airflow_env,
    settings,
    receiver,
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
    run = dag_test(env, "retrain", {"drift_check_id": None})
    assert run["state"] == "failed", run
    assert run["tasks"]["assemble_training_set"] == "failed", run["tasks"]
    (message,) = received
    assert message["event"] == "retrain_failed"
    assert message["details"]["task_id"] == "assemble_training_set"
    assert dead.removeprefix("http://") in message["summary"], message["summary"]
    with session_scope(engine) as session:
        assert session.query(RetrainRun).count() == 0
    assert [v["version"] for v in registry.list_versions(settings)] == [production, staging]
    from driftloop.stages.promotion import roles

    assert roles(settings) == (production, staging)


@pytest.mark.timeout(600)
def test_retrain_rejected_at_the_gate_sends_retrain_rejected(airflow_env, settings, receiver):
    """A gate no challenger can pass (training.min_holdout far above any holdout, and no
    re-gate allowed, so the undecided challenger is rejected at once): the retrain DAG's gate
    task sends retrain_rejected with the version and its evidence, and no Staging appears."""
    url, received = receiver
    fast = {"models": ["dt"], "folds": 2, "budget_minutes": 0.5}
    trained = settings.model_copy(update={"training": settings.training.model_copy(update=fast)})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    from driftloop.stages import retrain as steps

    assert steps.bootstrap(trained, engine).model_version == "1"
    report_id = drifted(trained, engine)
    env = _env(
        airflow_env,
        settings,
        url,
        DRIFTLOOP_TRAINING__MODELS=json.dumps(fast["models"]),
        DRIFTLOOP_TRAINING__FOLDS=str(fast["folds"]),
        DRIFTLOOP_TRAINING__BUDGET_MINUTES=str(fast["budget_minutes"]),
        DRIFTLOOP_TRAINING__MIN_HOLDOUT="100000",
        DRIFTLOOP_TRAINING__GATE_RETRIES="0",
    )
    run = dag_test(env, "retrain", {"drift_check_id": report_id})
    assert run["state"] == "success", run
    assert set(run["tasks"].values()) == {"success"}, run["tasks"]

    (message,) = received  # the rejection only: no retrain_failed
    details = message["details"]
    assert (message["event"], message["model"]) == ("retrain_rejected", settings.model.name)
    assert (details["decision"], details["model_version"], details["production_version"]) == (
        "rejected",
        "2",
        "1",
    )
    rows = details["evidence"]["rows"]
    assert 0 < rows < 100000 and details["evidence"]["attempt"] == 1
    assert details["reason"].startswith(
        "still undecided after 1 gate attempts (training.gate_retries is 0): "
        f"the gate holdout has {rows} rows, fewer than training.min_holdout (100000)"
    )
    assert message["summary"] == f"version 2 rejected at the gate: {details['reason']}"

    with session_scope(engine) as session:
        stored = session.get(RetrainRun, details["retrain_id"])
        assert (stored.decision, stored.model_version, stored.drift_check_id) == (
            "rejected",
            "2",
            report_id,
        )
    client = registry.configure(settings)
    rejected = client.get_model_version(settings.model.name, "2")
    assert rejected.tags[registry.GATE] == "rejected" and not rejected.aliases
    assert registry.by_alias(client, settings.model.name, registry.STAGING) is None
    from driftloop.stages.promotion import roles

    assert roles(settings) == ("1", None)


@pytest.mark.parametrize("action", ["evaluate", "promote"])
def test_ab_evaluate_and_promotion_with_mlflow_down_change_nothing(settings, monkeypatch, action):
    """Outside serving an unreachable registry is an error with the server's address, and
    no evaluation, audit record or role change is left behind."""
    from driftloop.stages.ab_evaluation import evaluate
    from driftloop.stages.promotion import history, promote, roles
    from driftloop.storage import ABEvaluation
    from tests.support.ab_traffic import send

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
