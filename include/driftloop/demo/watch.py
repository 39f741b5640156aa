"""Following the demo's loop: trigger the DAG runs through Airflow's REST API, wait for them,
and read what they recorded (see :mod:`driftloop.demo.loop`).

Each function takes the ``model`` whose loop it follows: its DAG ids and Assets carry the name
and the rows it reads are that model's only (:mod:`driftloop.demo.models`, several models in
one database); None is a config without ``models:`` (today's ids, every row)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from driftloop.events import DRIFT_ASSET_URI, model_asset_uri, model_dag_id
from driftloop.settings_loader import load_settings
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.processes import StackError, wait_until
from driftloop.vocabulary import ABDecision

DECIDED = {
    ABDecision.PROMOTE,
    ABDecision.REJECT,
    ABDecision.INCONCLUSIVE,
}  # a look that ends a test


def check_batches(
    airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None], model: str | None = None
) -> list[dict[str, Any]]:
    """One drift_monitor run: ingest what landed, check every unchecked batch (in parallel);
    the checks it made, oldest batch first."""
    return checks_of(airflow, engine, say, trigger_check(airflow, engine, model))


def trigger_check(
    airflow: AirflowStack, engine: sa.Engine, model: str | None = None
) -> tuple[str | None, str, int]:
    """Start the model's drift_monitor run without waiting (other models' runs go on beside
    it): what :func:`checks_of` needs to wait for it and read its checks."""
    from driftloop.storage import DriftCheck

    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.max(DriftCheck.id))).scalar() or 0
    return model, airflow.trigger(model_dag_id("drift_monitor", model)), before


def checks_of(
    airflow: AirflowStack,
    engine: sa.Engine,
    say: Callable[[str], None],
    started: tuple[str | None, str, int],
    timeout: float = 240.0,
) -> list[dict[str, Any]]:
    """Wait for a run :func:`trigger_check` started; the model's checks it made, oldest batch
    first."""
    from driftloop.storage import Batch, DriftCheck

    model, run_id, before = started
    dag_id = model_dag_id("drift_monitor", model)
    state = airflow.wait_for_run(dag_id, run_id, timeout=timeout)
    if state != "success":
        raise StackError(f"{dag_id} run {run_id} {state}\n{airflow.logs_tail()}")
    query = (
        sa.select(
            Batch.name,
            DriftCheck.status,
            DriftCheck.drift_share,
            DriftCheck.drifted_features,
            DriftCheck.html_path,
        )
        .join(Batch, Batch.id == DriftCheck.batch_id)
        .where(DriftCheck.id > before)
        .order_by(Batch.batch_time, Batch.id)
    )
    if model is not None:
        query = query.where(DriftCheck.model_name == model)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        raise StackError("drift_monitor found no batch to check")
    checked = []
    for row in rows:
        batch = {
            "batch": row.name,
            "status": row.status,
            "drift_share": row.drift_share,
            "drifted": list(row.drifted_features or []),
            "report": row.html_path,
        }
        drifted = f": {', '.join(batch['drifted'])}" if batch["drifted"] else ""
        say(f"{dag_id}: {row.name} {batch['status']}{drifted}")
        checked.append(batch)
    return checked


def task_instances(airflow: AirflowStack, dag_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every task instance of every run of ``dag_ids``, as the REST API describes it: where
    it ran (queue, hostname) and how it ended."""
    keys = ("dag_id", "task_id", "map_index", "state", "queue", "hostname")
    found = []
    for dag_id in dag_ids:
        for run in airflow.dag_runs(dag_id):
            for ti in airflow.task_instances(dag_id, run["dag_run_id"]):
                found.append({key: ti.get(key) for key in keys})
    return found


def await_retrain(
    airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None], model: str | None = None
) -> dict:
    """The drift event starts retrain on its own (an Asset-triggered run); wait for its gate."""
    dag_id = model_dag_id("retrain", model)
    say(f"drift announced on {model_asset_uri(DRIFT_ASSET_URI, model)}: waiting for {dag_id}")
    run = wait_until(
        lambda: next(iter(airflow.dag_runs(dag_id)), None), 120, "the Asset-triggered retrain"
    )
    say(f"{dag_id} started ({run['run_type']}); PyCaret compares models, MLflow tracks the run")
    state = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=600)
    if state != "success":
        raise StackError(f"{dag_id} run {run['dag_run_id']} {state}\n{airflow.logs_tail()}")
    gate = retrain_runs(engine, model)[-1]
    say(f"gate: version {gate['model_version']} {gate['decision']}: {gate['reason']}")
    return gate


def await_decision(
    airflow: AirflowStack,
    engine: sa.Engine,
    say: Callable[[str], None],
    timeout: float,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Trigger ab_evaluate until it decides (or the time is up); return every evaluation."""
    from driftloop.storage import ABEvaluation, ABTest

    dag_id = model_dag_id("ab_evaluate", model)
    query = sa.select(ABEvaluation).order_by(ABEvaluation.id.desc()).limit(1)
    if model is not None:
        query = query.join(ABTest, ABTest.id == ABEvaluation.test_id).where(
            ABTest.model_name == model
        )
    deadline = time.monotonic() + timeout
    evaluations: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        time.sleep(10)
        run_id = airflow.trigger(dag_id)
        airflow.wait_for_run(dag_id, run_id, timeout=180)
        with engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            say(f"{dag_id}: no test yet (Staging has answered no request)")
            continue
        evaluation = {
            "id": row.id,
            "test_id": row.test_id,
            "decision": row.decision,
            "reason": row.reason,
            "metric": row.metric,
            "production": row.production_value,
            "staging": row.staging_value,
            "samples": (row.production_samples, row.staging_samples),
            "p_value": row.p_value,
            "report": row.html_path,
            "statistics": row.statistics,
        }
        if evaluations and evaluations[-1]["id"] == evaluation["id"]:
            continue
        evaluations.append(evaluation)
        say(f"{dag_id}: {row.decision}: {row.reason}")
        if row.decision in DECIDED:
            break
    return evaluations


def retrain_runs(engine: sa.Engine, model: str | None = None) -> list[dict[str, Any]]:
    """Every recorded retrain decision (of the model), oldest first."""
    from driftloop.storage import RetrainRun

    query = sa.select(RetrainRun).order_by(RetrainRun.id)
    if model is not None:
        query = query.where(RetrainRun.model_name == model)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "trigger": r.trigger,
            "decision": r.decision,
            "reason": r.reason,
            "model_version": r.model_version,
            "production_version": r.production_version,
            "challenger_score": r.challenger_score,
            "production_score": r.production_score,
            "drift_check_id": r.drift_check_id,
            "details": r.details,
        }
        for r in rows
    ]


def versions(model: str | None = None) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Every version (of the model) with its role, and the lineage tags of the one in
    Production."""
    from driftloop import registry

    settings = load_settings(model=model)
    production = registry.by_alias(
        registry.configure(settings), settings.model.name, registry.PRODUCTION
    )
    return registry.list_versions(settings), dict(production.tags) if production else {}


def answer_after(url: str, record: dict[str, Any]) -> dict[str, Any]:
    """Which version answers a Production request once the decision is in (``url``: the
    server's, or a model's ``<server>/models/<name>``)."""
    import requests

    response = requests.post(
        f"{url}/predict", json={"record": record}, headers={"X-Variant": "production"}, timeout=30
    )
    body = response.json()
    return {
        "status": response.status_code,
        "version": body.get("version"),
        "variant": body.get("variant"),
    }
