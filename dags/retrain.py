"""retrain: on drift (Asset ``driftloop://drift``), on Production's decay (``driftloop://decay``)
or by hand, train a challenger and gate it.

assemble the training set -> train (PyCaret AutoML, tracked in MLflow) -> evaluate on the gate
holdout -> register -> gate (Staging, rejected with its reason, or pending when the holdout
cannot decide yet: ``drift_monitor`` re-gates it as labelled batches land). A skipped retrain (no
Production yet, a Staging version under A/B test, a version pending its gate, the cooldown,
identical data) is recorded and ends the run. When ``training.python`` names another interpreter, train and evaluate run
there (``@task.external_python``), so PyCaret's pins need not live beside Airflow's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

from driftloop.config import dag_config, load_settings
from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI

CONFIG = dag_config(__file__)
SETTINGS = load_settings(CONFIG)
DRIFT = Asset(DRIFT_ASSET_URI)
DECAY = Asset(DECAY_ASSET_URI)


def alert_failure(context) -> None:
    """A failed retrain task (after its retries) is an alert."""
    from driftloop import alerts

    task = context["task_instance"]
    alerts.send(
        load_settings(CONFIG),
        "retrain_failed",
        f"retrain task {task.task_id} failed in run {task.run_id}: {context.get('exception')}",
        {"dag_id": task.dag_id, "task_id": task.task_id, "run_id": task.run_id},
    )


def cause(params: dict | None, events) -> tuple[int | None, str]:
    """The drift report and the trigger behind a run: the newest drift event's report, a
    decay event, or by hand (the run's ``drift_check_id`` parameter, if any)."""
    from driftloop.vocabulary import Trigger

    events = events or {}
    if list(events.get(DRIFT, [])):
        return list(events[DRIFT])[-1].extra.get("report_id"), Trigger.DRIFT
    if list(events.get(DECAY, [])):
        return (params or {}).get("drift_check_id"), Trigger.DECAY
    return (params or {}).get("drift_check_id"), Trigger.MANUAL


def ml_task(function):
    """``@task``, or ``@task.external_python`` when ``training.python`` names an interpreter.

    A fresh decorator per function: one external_python decorator reused keeps the first task's id.
    """
    if SETTINGS.training.python:
        return task.external_python(python=str(SETTINGS.training.python))(function)
    return task(function)


@dag(
    dag_id="retrain",
    schedule=DRIFT | DECAY,  # data drift or performance decay
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": SETTINGS.training.retries,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": alert_failure,
    },
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
        """Skip, or write the training set and gate holdout (Production's data + recent batches)."""
        from driftloop.database import open_database
        from driftloop.training.retrain import assemble

        settings = load_settings(CONFIG)
        drift_check_id, trigger = cause(params, triggering_asset_events)
        return assemble(settings, open_database(settings), drift_check_id, trigger).to_xcom()

    @task.short_circuit
    def should_train(assembly: dict) -> bool:
        """A recorded skip ends the run here."""
        from driftloop.training.steps import Skip, from_xcom

        assembled = from_xcom(assembly)
        if isinstance(assembled, Skip):
            print(f"skipped: {assembled.reason}")
        return not isinstance(assembled, Skip)

    @ml_task
    def train(config: str, assembly: dict) -> dict:
        """PyCaret compare / select / finalize, logged to MLflow."""
        import logging

        from driftloop.config import load_settings
        from driftloop.database import open_database
        from driftloop.training.retrain import train_and_log
        from driftloop.training.steps import Assembly

        logging.getLogger("driftloop").setLevel(logging.INFO)
        settings = load_settings(config)
        return train_and_log(
            settings, open_database(settings), Assembly.from_xcom(assembly)
        ).to_xcom()

    @ml_task
    def evaluate(config: str, trained: dict) -> dict:
        """Challenger and Production on the same holdout neither has seen."""
        from driftloop.config import load_settings
        from driftloop.training.retrain import evaluate as score_both
        from driftloop.training.steps import Trained

        return score_both(load_settings(config), Trained.from_xcom(trained)).to_xcom()

    @task
    def register(evaluated: dict) -> dict:
        """A new model version with lineage tags and its reference profile."""
        from driftloop.database import open_database
        from driftloop.training.retrain import register as register_version
        from driftloop.training.steps import Scored

        settings = load_settings(CONFIG)
        return register_version(
            settings, open_database(settings), Scored.from_xcom(evaluated)
        ).to_xcom()

    @task
    def gate(registered: dict) -> dict:
        """Non-inferiority at the margin: Staging, rejected, or pending (insufficient evidence)."""
        from driftloop.database import open_database
        from driftloop.training.retrain import gate as decide
        from driftloop.training.steps import Registered

        settings = load_settings(CONFIG)
        decision = decide(settings, open_database(settings), Registered.from_xcom(registered))
        print(f"gate: {decision.decision}: {decision.reason}")
        if decision.decision == "rejected":
            from driftloop import alerts

            alerts.send(
                settings,
                "retrain_rejected",
                f"version {decision.model_version} rejected at the gate: {decision.reason}",
                decision.to_dict(),
            )
        return decision.to_dict()

    assembly = assemble_training_set()
    trained = train(CONFIG, assembly)
    should_train(assembly) >> trained
    gate(register(evaluate(CONFIG, trained)))


retrain()
