"""drift_monitor: ingest new batches, test the oldest unchecked one for drift, announce drift,
and re-gate a model version that waits for evidence (tagged pending) on the grown holdout.

On drift, an event on the Asset ``driftloop://drift`` carries ``batch_id``, ``report_id`` and
``model_version``; without drift, no event. The Production version also predicts the batch
(``driftloop.performance``: realized metrics when labelled, estimated before, prediction drift,
in the same report); a realized decay not yet announced emits ``driftloop://decay``. Logic
lives in ``driftloop`` (which also sends the drift and gate alerts); heavy imports happen
inside the tasks.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from driftloop.dag_support import dag_settings, default_args, open_task
from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI

CONFIG, SETTINGS = dag_settings(__file__)
DRIFT = Asset(DRIFT_ASSET_URI)
DECAY = Asset(DECAY_ASSET_URI)


@dag(
    dag_id="drift_monitor",
    schedule=SETTINGS.drift.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    params={
        "batch": Param(
            None, type=["null", "string", "integer"], description="Batch id or name to check."
        )
    },
    tags=["driftloop"],
    doc_md=__doc__,
)
def drift_monitor() -> None:
    @task
    def ingest_landing() -> int:
        """Validate new files in the landing folder: accepted or quarantined."""
        from driftloop.ingest import ingest_landing as ingest

        settings, engine = open_task(CONFIG)
        outcomes = ingest(settings, engine)
        for outcome in outcomes:
            print(f"{outcome.name}: {outcome.status} {outcome.reasons or ''}")
        return len(outcomes)

    @task
    def check_batch(params: dict | None = None) -> dict | None:
        """Test the requested (or oldest unchecked) accepted batch; store the report."""
        from driftloop.drift.monitor import check_next_batch
        from driftloop.registry import current_version

        settings, engine = open_task(CONFIG)
        # The reference is the current Production version's profile, when there is one.
        production = current_version(settings)
        outcome = check_next_batch(settings, engine, (params or {}).get("batch"), production)
        if outcome is None:
            print("no unchecked accepted batch")
            return None
        print(
            f"batch {outcome.batch_name}: {outcome.status}, drifted {outcome.drifted_features}, report {outcome.html_path}"
        )
        performance = outcome.performance or {}
        if performance.get("error"):
            print(f"performance not assessed: {performance['error']}")
        elif performance:
            print(f"model inference {performance['inference_seconds']:.3f} s (apart from drift)")
        return outcome.to_dict()

    @task.short_circuit
    def drift_found(outcome: dict | None) -> bool:
        """Only a new drift verdict goes on; re-running a batch changes nothing."""
        from driftloop.vocabulary import DriftStatus

        return bool(outcome and outcome["status"] == DriftStatus.DRIFT and outcome["new"])

    @task(outlets=[DRIFT])
    def announce_drift(outcome: dict, outlet_events=None) -> None:
        """Emit the drift event for retraining (the check itself sent the drift alert)."""
        outlet_events[DRIFT].extra = {
            "batch_id": outcome["batch_id"],
            "report_id": outcome["report_id"],
            "model_version": outcome["model_version"],
        }

    @task
    def decay_waiting(outcome: dict | None) -> dict | None:
        """The oldest realized decay not yet announced (this batch's, or late labels')."""
        from driftloop.performance.monitor import take_decay

        return take_decay(*open_task(CONFIG))

    @task.short_circuit
    def decay_found(decay: dict | None) -> bool:
        return bool(decay)

    @task(outlets=[DECAY])
    def announce_decay(decay: dict, outlet_events=None) -> None:
        """Emit the decay event; ``retrain`` is scheduled on it."""
        outlet_events[DECAY].extra = decay

    @task
    def regate_pending() -> int:
        """New labelled rows may decide a pending version's gate (no new training)."""
        from driftloop.training.gatekeeper import regate_pending as regate

        decisions = regate(*open_task(CONFIG))
        for decision in decisions:
            print(
                f"re-gate of version {decision.model_version}: {decision.decision}: {decision.reason}"
            )
        return len(decisions)

    outcome = check_batch()
    ingest_landing() >> [outcome, regate_pending()]
    drift_found(outcome) >> announce_drift(outcome)
    decay = decay_waiting(outcome)
    decay_found(decay) >> announce_decay(decay)


drift_monitor()
