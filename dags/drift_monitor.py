"""drift_monitor: ingest new batches, test every unchecked one for drift in parallel, announce
drift, and re-gate a model version that waits for evidence (tagged pending) on the grown holdout.

``unchecked_batches`` lists the accepted batches nobody has checked (or the one the ``batch``
parameter names); ``check_batch`` is mapped over them, one task per batch, which Celery spreads
over its workers. Each batch is checked exactly once: a mapped task claims its batch in the
database first, so two tasks or two overlapping runs never both check it. A run that found
drift emits one event on the Asset ``driftloop://drift``: ``drift_checks`` lists every new
drift verdict (``batch_id``, ``report_id``), and ``batch_id``, ``report_id`` and
``model_version`` are those of the newest batch among them; without drift, no event. One
``retrain`` takes every event waiting for it: the newest check drives it, the others are
recorded as merged into it. The Production version also predicts the batch
(``driftloop.performance``: realized metrics when labelled, estimated before, prediction drift,
in the same report); a realized decay not yet announced emits ``driftloop://decay``, unless
the run announces drift (its retrain serves both: one retrain per run). ``check_traffic``
tests the served traffic too: each closed window of the prediction log (``monitoring.
traffic_window``) not checked yet, against the same reference, with the same tests and report
(``driftloop.stages.traffic_check``); a drifted window alerts (``traffic_drift``) and starts no
retrain. Logic lives in ``driftloop`` (which also sends the drift and gate alerts); heavy
imports happen inside the tasks. One DAG per model, each with its own Assets
(``driftloop.orchestration.model_dags``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI
from driftloop.orchestration.dag_support import default_args
from driftloop.orchestration.model_dags import ModelDags, dag_models


def drift_monitor(model: ModelDags) -> None:
    """The drift_monitor DAG of one model: its id, Assets, schedule and settings from
    ``model``."""
    drift_asset = Asset(model.asset_uri(DRIFT_ASSET_URI))
    decay_asset = Asset(model.asset_uri(DECAY_ASSET_URI))

    @dag(
        dag_id=model.dag_id("drift_monitor"),
        schedule=model.settings.drift.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(retries=2),
        params={
            "batch": Param(
                None, type=["null", "string", "integer"], description="Batch id or name to check."
            )
        },
        tags=model.tags,
        doc_md=__doc__,
    )
    def drift_monitor_dag() -> None:
        @task
        def ingest_landing() -> int:
            """Validate new files in the landing folder: accepted or quarantined."""
            from driftloop.stages.ingest import ingest_landing as ingest

            settings, engine = model.open()
            outcomes = ingest(settings, engine)
            for outcome in outcomes:
                print(f"{outcome.name}: {outcome.status} {outcome.reasons or ''}")
            return len(outcomes)

        @task
        def unchecked_batches(params: dict | None = None) -> list[int]:
            """The batch the run names, else every accepted batch nobody has checked, oldest
            first."""
            from driftloop.stages.claims import unchecked_batches as waiting
            from driftloop.stages.ingest import find_batch
            from driftloop.storage import session_scope

            settings, engine = model.open()
            requested = (params or {}).get("batch")
            if requested is not None:
                with session_scope(engine) as session:
                    return [find_batch(session, requested, settings.model.name).id]
            batch_ids = waiting(engine, settings.model.name)
            print(f"unchecked accepted batches: {batch_ids or 'none'}")
            return batch_ids

        @task
        def check_batch(batch_id: int, ti=None) -> dict | None:
            """Claim one batch, test it against the reference, store the report."""
            from driftloop.registry import current_version
            from driftloop.stages.claims import BatchBusy
            from driftloop.stages.drift_check import check_next_batch

            settings, engine = model.open()
            # The reference is the current Production version's profile, when there is one.
            production = current_version(settings)
            # An Airflow retry of this very task may take its own claim again.
            claimant = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
            try:
                outcome = check_next_batch(
                    settings, engine, batch_id, production, claimant=claimant
                )
            except BatchBusy as exc:
                print(exc)
                return None
            print(
                f"batch {outcome.batch_name}: {outcome.status}, "
                f"drifted {outcome.drifted_features}, report {outcome.html_path}"
            )
            performance = outcome.performance or {}
            if performance.get("error"):
                print(f"performance not assessed: {performance['error']}")
            elif performance:
                print(
                    f"model inference {performance['inference_seconds']:.3f} s (apart from drift)"
                )
            return outcome.to_dict()

        @task(trigger_rule="none_failed")
        def new_drift(outcomes: list[dict | None] | None = None) -> dict | None:
            """This run's new drift verdicts in one event; re-checking a batch changes nothing."""
            from driftloop.events import drift_event

            return drift_event(outcomes or [])

        @task.short_circuit
        def drift_found(drift: dict | None) -> bool:
            return bool(drift)

        @task(outlets=[drift_asset])
        def announce_drift(drift: dict, outlet_events=None) -> None:
            """Emit the drift event for retraining (each check sent its drift alert)."""
            outlet_events[drift_asset].extra = drift

        @task(trigger_rule="none_failed")
        def decay_waiting(outcomes: list[dict | None] | None = None) -> dict | None:
            """The oldest realized decay not yet announced (this batch's, or late labels')."""
            from driftloop.stages.performance_check import take_decay

            return take_decay(*model.open())

        @task.short_circuit
        def decay_found(decay: dict | None, drift: dict | None) -> bool:
            """One retrain per run: a decay found beside new drift is left to drift's retrain (on
            the same batches); two events would start a second retrain, or not, as they happen to
            reach the scheduler together or apart."""
            if decay and drift:
                print(
                    f"decay of version {decay['model_version']} goes with this run's drift retrain"
                )
            return bool(decay) and not drift

        @task(outlets=[decay_asset])
        def announce_decay(decay: dict, outlet_events=None) -> None:
            """Emit the decay event; ``retrain`` is scheduled on it."""
            outlet_events[decay_asset].extra = decay

        @task
        def check_traffic() -> list[dict]:
            """Test each closed window of served traffic not checked yet (the prediction log's
            inputs, shadow and batch-scored rows left out) against the reference."""
            from driftloop.registry import current_version
            from driftloop.stages.traffic_check import check_traffic as check
            from driftloop.stages.traffic_check import pending_windows

            settings, engine = model.open()
            if not pending_windows(settings, engine):  # no registry call for an idle server
                print("no closed window of served traffic waits for a check")
                return []
            outcomes = check(settings, engine, current_version(settings))
            for outcome in outcomes:
                print(
                    f"traffic {outcome.window_start} to {outcome.window_end}: {outcome.status} "
                    f"({outcome.rows} records), drifted {outcome.drifted_features}, "
                    f"report {outcome.html_path}"
                )
            return [outcome.to_dict() for outcome in outcomes]

        @task
        def regate_pending() -> int:
            """New labelled rows may decide a pending version's gate (no new training)."""
            from driftloop.stages.gating import regate_pending as regate

            decisions = regate(*model.open())
            for decision in decisions:
                print(
                    f"re-gate of version {decision.model_version}: "
                    f"{decision.outcome}: {decision.reason}"
                )
            return len(decisions)

        batch_ids = unchecked_batches()
        ingest_landing() >> [batch_ids, regate_pending()]
        check_traffic()
        outcomes = check_batch.expand(batch_id=batch_ids)
        drift = new_drift(outcomes)
        drift_found(drift) >> announce_drift(drift)
        decay = decay_waiting(outcomes)
        decay_found(decay, drift) >> announce_decay(decay)

    drift_monitor_dag()


for model in dag_models(__file__):
    drift_monitor(model)
