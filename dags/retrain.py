"""retrain: on drift (Asset ``driftloop://drift``), on Production's decay (``driftloop://decay``)
or by hand, train a challenger and gate it.

assemble the training set -> train (PyCaret AutoML, tracked in MLflow) -> evaluate on the gate
holdout -> register -> gate (Staging, rejected with its reason, or pending when the holdout
cannot decide yet: ``drift_monitor`` re-gates it as labelled batches land). A skipped retrain (no
Production yet, a Staging version under A/B test, a version pending its gate, the cooldown,
identical data) is recorded and ends the run; a rejection is an alert (sent by the gate), and so
is a task that fails after its retries. When ``training.python`` names another interpreter,
train and evaluate run there (``@task.external_python``), so PyCaret's pins need not live beside
Airflow's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI, drift_check_ids
from driftloop.orchestration.dag_support import (
    TRAINING_QUEUE,
    dag_settings,
    default_args,
    open_task,
    retrain_failure_alert,
)

CONFIG, SETTINGS = dag_settings(__file__)
DRIFT = Asset(DRIFT_ASSET_URI)
DECAY = Asset(DECAY_ASSET_URI)


def cause(params: dict | None, events) -> tuple[list[int | None], str]:
    """The drift reports and the trigger behind a run: every waiting drift event's report (the
    run takes the newest and merges the others into it), a decay event, or by hand (the run's
    ``drift_check_id`` parameter, if any)."""
    from driftloop.vocabulary import Trigger

    events = events or {}
    drift = list(events.get(DRIFT, []))
    if drift:
        return drift_check_ids(event.extra for event in drift), Trigger.DRIFT
    if list(events.get(DECAY, [])):
        return [(params or {}).get("drift_check_id")], Trigger.DECAY
    return [(params or {}).get("drift_check_id")], Trigger.MANUAL


def ml_task(function):
    """``@task``, or ``@task.external_python`` when ``training.python`` names an interpreter; on
    the ``training`` queue (Celery workers with the ML stack and the memory; ignored locally).

    A fresh decorator per function: one external_python decorator reused keeps the first task's id.
    """
    if SETTINGS.training.python:
        return task.external_python(python=str(SETTINGS.training.python), queue=TRAINING_QUEUE)(
            function
        )
    return task(queue=TRAINING_QUEUE)(function)


@dag(
    dag_id="retrain",
    schedule=DRIFT | DECAY,  # data drift or performance decay
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=SETTINGS.training.retries,
        on_failure=retrain_failure_alert(CONFIG),
        retry_delay=timedelta(seconds=SETTINGS.training.retry_delay_seconds),
    ),
    params={
        "drift_check_id": Param(
            None, type=["null", "integer"], description="Drift report id behind this retrain."
        )
    },
    tags=["driftloop"],
    doc_md=__doc__,
)
def retrain() -> None:
    @task
    def assemble_training_set(params: dict | None = None, triggering_asset_events=None) -> dict:
        """Skip, or write the training set and gate holdout (Production's data + recent batches).
        Several waiting drift events make one retrain, on the newest check."""
        from driftloop.stages.training_data import assemble_waiting

        drift_check_ids, trigger = cause(params, triggering_asset_events)
        return assemble_waiting(*open_task(CONFIG), drift_check_ids, trigger).to_xcom()

    @task.short_circuit
    def should_train(assembly: dict) -> bool:
        """A recorded skip ends the run here."""
        from driftloop.stages.retrain_steps import Skip, from_xcom

        assembled = from_xcom(assembly)
        if isinstance(assembled, Skip):
            print(f"skipped: {assembled.reason}")
        return not isinstance(assembled, Skip)

    @ml_task
    def train(config: str, assembly: dict) -> dict:
        """PyCaret compare / select / finalize, logged to MLflow."""
        import logging

        from driftloop.orchestration.dag_support import open_task
        from driftloop.stages.retrain import train_and_log
        from driftloop.stages.retrain_steps import Assembly

        logging.getLogger("driftloop").setLevel(logging.INFO)
        return train_and_log(*open_task(config), Assembly.from_xcom(assembly)).to_xcom()

    @ml_task
    def evaluate(config: str, trained: dict) -> dict:
        """Challenger and Production on the same holdout neither has seen."""
        from driftloop.settings_loader import load_settings
        from driftloop.stages.retrain import evaluate as score_both
        from driftloop.stages.retrain_steps import Trained

        return score_both(load_settings(config), Trained.from_xcom(trained)).to_xcom()

    @task
    def register(evaluated: dict) -> dict:
        """A new model version with lineage tags and its reference profile."""
        from driftloop.stages.retrain import register as register_version
        from driftloop.stages.retrain_steps import Scored

        return register_version(*open_task(CONFIG), Scored.from_xcom(evaluated)).to_xcom()

    @task
    def gate(registered: dict) -> dict:
        """Non-inferiority at the margin: Staging, rejected (an alert), or pending (insufficient
        evidence)."""
        from driftloop.stages.retrain import gate as decide
        from driftloop.stages.retrain_steps import Registered

        decision = decide(*open_task(CONFIG), Registered.from_xcom(registered))
        print(f"gate: {decision.outcome}: {decision.reason}")
        return decision.to_dict()

    assembly = assemble_training_set()
    trained = train(CONFIG, assembly)
    should_train(assembly) >> trained
    gate(register(evaluate(CONFIG, trained)))


retrain()
