"""retrain: on drift (Asset ``driftloop://drift``), on Production's decay (``driftloop://decay``)
or by hand, train a challenger and gate it.

assemble the training set -> train (PyCaret AutoML, tracked in MLflow) -> evaluate on the gate
holdout -> register -> gate (Staging, rejected with its reason, or pending when the holdout
cannot decide yet: ``drift_monitor`` re-gates it as labelled batches land). A skipped retrain (no
Production yet, a Staging version under A/B test, a version pending its gate, the cooldown,
identical data) is recorded and ends the run; a rejection is an alert (sent by the gate), and so
is a task that fails after its retries. When ``training.python`` names another interpreter,
train and evaluate run there (``@task.external_python``), so PyCaret's pins need not live beside
Airflow's. One DAG per model, started by that model's own Assets
(``driftloop.orchestration.model_dags``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI, drift_check_ids
from driftloop.orchestration.dag_support import TRAINING_QUEUE, default_args, retrain_failure_alert
from driftloop.orchestration.model_dags import ModelDags, dag_models


def cause(
    params: dict | None, events, drift_asset: Asset, decay_asset: Asset
) -> tuple[list[int | None], str]:
    """The drift reports and the trigger behind a run: every waiting drift event's report (the
    run takes the newest and merges the others into it), a decay event, or by hand (the run's
    ``drift_check_id`` parameter, if any)."""
    from driftloop.vocabulary import Trigger

    events = events or {}
    drift = list(events.get(drift_asset, []))
    if drift:
        return drift_check_ids(event.extra for event in drift), Trigger.DRIFT
    if list(events.get(decay_asset, [])):
        return [(params or {}).get("drift_check_id")], Trigger.DECAY
    return [(params or {}).get("drift_check_id")], Trigger.MANUAL


def ml_task(model: ModelDags):
    """``@task``, or ``@task.external_python`` when the model's ``training.python`` names an
    interpreter; on the ``training`` queue (Celery workers with the ML stack and the memory;
    ignored locally), for every model.

    A fresh decorator per function: one external_python decorator reused keeps the first task's id.
    """
    python = model.settings.training.python

    def decorate(function):
        if python:
            return task.external_python(python=str(python), queue=TRAINING_QUEUE)(function)
        return task(queue=TRAINING_QUEUE)(function)

    return decorate


def retrain(model: ModelDags) -> None:
    """The retrain DAG of one model, started by that model's drift or decay Asset."""
    drift_asset = Asset(model.asset_uri(DRIFT_ASSET_URI))
    decay_asset = Asset(model.asset_uri(DECAY_ASSET_URI))

    @dag(
        dag_id=model.dag_id("retrain"),
        schedule=drift_asset | decay_asset,  # data drift or performance decay
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(
            retries=model.settings.training.retries,
            on_failure=retrain_failure_alert(model.config, model.model),
            retry_delay=timedelta(seconds=model.settings.training.retry_delay_seconds),
        ),
        params={
            "drift_check_id": Param(
                None, type=["null", "integer"], description="Drift report id behind this retrain."
            )
        },
        tags=model.tags,
        doc_md=__doc__,
    )
    def retrain_dag() -> None:
        @task
        def assemble_training_set(params: dict | None = None, triggering_asset_events=None) -> dict:
            """Skip, or write the training set and gate holdout (Production's data + recent
            batches). Several waiting drift events make one retrain, on the newest check."""
            from driftloop.stages.training_data import assemble_waiting

            drift_check_ids, trigger = cause(
                params, triggering_asset_events, drift_asset, decay_asset
            )
            return assemble_waiting(*model.open(), drift_check_ids, trigger).to_xcom()

        @task.short_circuit
        def should_train(assembly: dict) -> bool:
            """A recorded skip ends the run here."""
            from driftloop.stages.retrain_steps import Skip, from_xcom

            assembled = from_xcom(assembly)
            if isinstance(assembled, Skip):
                print(f"skipped: {assembled.reason}")
            return not isinstance(assembled, Skip)

        # train and evaluate may run in another interpreter: they take what they need as arguments
        @ml_task(model)
        def train(config: str, name: str | None, assembly: dict) -> dict:
            """PyCaret compare / select / finalize, logged to MLflow."""
            import logging

            from driftloop.orchestration.dag_support import open_task
            from driftloop.stages.retrain import train_and_log
            from driftloop.stages.retrain_steps import Assembly

            logging.getLogger("driftloop").setLevel(logging.INFO)
            return train_and_log(*open_task(config, name), Assembly.from_xcom(assembly)).to_xcom()

        @ml_task(model)
        def evaluate(config: str, name: str | None, trained: dict) -> dict:
            """Challenger and Production on the same holdout neither has seen."""
            from driftloop.settings_loader import load_settings
            from driftloop.stages.retrain import evaluate as score_both
            from driftloop.stages.retrain_steps import Trained

            return score_both(load_settings(config, name), Trained.from_xcom(trained)).to_xcom()

        @task
        def register(evaluated: dict) -> dict:
            """A new model version with lineage tags and its reference profile."""
            from driftloop.stages.retrain import register as register_version
            from driftloop.stages.retrain_steps import Scored

            return register_version(*model.open(), Scored.from_xcom(evaluated)).to_xcom()

        @task
        def gate(registered: dict) -> dict:
            """Non-inferiority at the margin: Staging, rejected (an alert), or pending (insufficient
            evidence)."""
            from driftloop.stages.retrain import gate as decide
            from driftloop.stages.retrain_steps import Registered

            decision = decide(*model.open(), Registered.from_xcom(registered))
            print(f"gate: {decision.outcome}: {decision.reason}")
            return decision.to_dict()

        assembly = assemble_training_set()
        trained = train(model.config, model.model, assembly)
        should_train(assembly) >> trained
        gate(register(evaluate(model.config, model.model, trained)))

    retrain_dag()


for model in dag_models(__file__):
    retrain(model)
