"""Following the demo's loop: trigger the DAG runs through Airflow's REST API, wait for them,
and read what they recorded (see :mod:`driftloop.demo.loop`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

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
    airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """One drift_monitor run: ingest what landed, check every unchecked batch (in parallel);
    the checks it made, oldest batch first."""
    from driftloop.storage import Batch, DriftCheck

    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.max(DriftCheck.id))).scalar() or 0
    run_id = airflow.trigger("drift_monitor")
    state = airflow.wait_for_run("drift_monitor", run_id, timeout=240)
    if state != "success":
        raise StackError(f"drift_monitor run {run_id} {state}\n{airflow.logs_tail()}")
    with engine.connect() as connection:
        rows = connection.execute(
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
        ).all()
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
        say(f"drift_monitor: {row.name} {batch['status']}{drifted}")
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


def await_retrain(airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None]) -> dict:
    """The drift event starts retrain on its own (an Asset-triggered run); wait for its gate."""
    say("drift announced on driftloop://drift: waiting for the retrain run it starts")
    run = wait_until(
        lambda: next(iter(airflow.dag_runs("retrain")), None), 120, "the Asset-triggered retrain"
    )
    say(f"retrain started ({run['run_type']}); PyCaret compares models, MLflow tracks the run")
    state = airflow.wait_for_run("retrain", run["dag_run_id"], timeout=600)
    if state != "success":
        raise StackError(f"retrain run {run['dag_run_id']} {state}\n{airflow.logs_tail()}")
    gate = retrain_runs(engine)[-1]
    say(f"gate: version {gate['model_version']} {gate['decision']}: {gate['reason']}")
    return gate


def await_decision(
    airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None], timeout: float
) -> list[dict[str, Any]]:
    """Trigger ab_evaluate until it decides (or the time is up); return every evaluation."""
    from driftloop.storage import ABEvaluation

    deadline = time.monotonic() + timeout
    evaluations: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        time.sleep(10)
        run_id = airflow.trigger("ab_evaluate")
        airflow.wait_for_run("ab_evaluate", run_id, timeout=180)
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(ABEvaluation).order_by(ABEvaluation.id.desc()).limit(1)
            ).first()
        if row is None:
            say("ab_evaluate: no test yet (Staging has answered no request)")
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
        say(f"ab_evaluate: {row.decision}: {row.reason}")
        if row.decision in DECIDED:
            break
    return evaluations


def retrain_runs(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every recorded retrain decision, oldest first."""
    from driftloop.storage import RetrainRun

    with engine.connect() as connection:
        rows = connection.execute(sa.select(RetrainRun).order_by(RetrainRun.id)).all()
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


def versions() -> tuple[list[dict[str, str]], dict[str, str]]:
    """Every version with its role, and the lineage tags of the one in Production."""
    from driftloop import registry

    settings = load_settings()
    production = registry.by_alias(
        registry.configure(settings), settings.model.name, registry.PRODUCTION
    )
    return registry.list_versions(settings), dict(production.tags) if production else {}


def answer_after(url: str, record: dict[str, Any]) -> dict[str, Any]:
    """Which version answers a Production request once the decision is in."""
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
