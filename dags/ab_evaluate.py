"""ab_evaluate: look at the running A/B test, decide, act; check Production's performance.

evaluate (numbers, report, decision: promote, reject, inconclusive or continue; the registry
follows, and servers pick it up within their poll interval) -> Production's realized metrics
today (``driftloop.performance``) -> on a decay not yet announced, emit ``driftloop://decay``
(``retrain`` is scheduled on it). With ``ab.approval: required`` a decision that must wait for a
person is announced on ``driftloop://approval`` instead of acted on (``ab_approval`` asks the
person). Logic lives in
``driftloop.ab``; heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from driftloop.events import APPROVAL_ASSET_URI, DECAY_ASSET_URI
from driftloop.orchestration.dag_support import default_args
from driftloop.orchestration.model_dags import ModelDags, dag_models


def ab_evaluate(model: ModelDags) -> None:
    """The ab_evaluate DAG of one model: its id, Assets, schedule and settings from ``model``."""
    decay_asset = Asset(model.asset_uri(DECAY_ASSET_URI))
    approval_asset = Asset(model.asset_uri(APPROVAL_ASSET_URI))

    @dag(
        dag_id=model.dag_id("ab_evaluate"),
        schedule=model.settings.ab.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(retries=2),
        tags=model.tags,
        doc_md=__doc__,
        params={
            "approval_timeout_hours": Param(
                None,
                type=["null", "number"],
                exclusiveMinimum=0,
                description="How long a person has to answer an approval this run asks for "
                "(empty: ab.approval_timeout_hours).",
            )
        },
    )
    def ab_evaluate_dag() -> None:
        @task
        def evaluate_test() -> dict | None:
            """The running test's numbers and decision, acted on and stored with its report."""
            from driftloop.stages.ab_evaluation import evaluate

            evaluation = evaluate(*model.open())
            if evaluation is None:
                print("no A/B test running (no Staging version, or it has answered no request yet)")
                return None
            print(f"A/B test {evaluation.test_id}: {evaluation.decision}: {evaluation.reason}")
            print(f"report: {evaluation.html_path}")
            if evaluation.approval:
                print(f"waits for a person: approval #{evaluation.approval['id']}")
            return {
                "test_id": evaluation.test_id,
                "decision": evaluation.decision,
                "reason": evaluation.reason,
                "report": evaluation.html_path,
                "approval": evaluation.approval,
            }

        @task.short_circuit
        def approval_needed(evaluation: dict | None) -> bool:
            """An approval no Airflow run asks about yet is announced; one being asked is not
            again."""
            return bool(
                evaluation and evaluation["approval"] and not evaluation["approval"]["dag_run_id"]
            )

        @task(outlets=[approval_asset])
        def ask_for_approval(evaluation: dict, outlet_events=None, params=None) -> None:
            """Emit the approval event, with how long the person has (this run's
            ``approval_timeout_hours``); ``ab_approval`` is scheduled on it."""
            waiting = evaluation["approval"]
            outlet_events[approval_asset].extra = {
                "approval_id": waiting["id"],
                "test_id": waiting["test_id"],
                "decision": waiting["decision"],
                "staging_version": waiting["staging_version"],
                # None: ab_approval reads ab.approval_timeout_hours when it starts to wait
                "timeout_hours": (params or {}).get("approval_timeout_hours"),
            }

        @task
        def check_today() -> dict | None:
            """Production's realized metrics today (feedback and labelled batches), judged against
            its out-of-sample estimate; then the oldest decay not yet announced, if any."""
            from datetime import UTC, datetime

            from driftloop.database import open_database
            from driftloop.registry import current_version
            from driftloop.stages.performance_check import check_day, take_decay

            settings = model.load()
            version = current_version(settings)
            if version is None:  # nothing to check: the database is not even opened
                print("no Production version")
                return None
            engine = open_database(settings)
            day = check_day(settings, engine, version, datetime.now(UTC).date())
            realized = day.realized
            print(f"Production v{version} today: {realized.reason if realized else 'no labels'}")
            return take_decay(settings, engine)

        @task.short_circuit
        def decay_found(decay: dict | None) -> bool:
            """Only a decay not announced before goes on: once per decaying version and check."""
            return bool(decay)

        @task(outlets=[decay_asset])
        def announce_decay(decay: dict, outlet_events=None) -> None:
            """Emit the decay event; ``retrain`` is scheduled on it."""
            outlet_events[decay_asset].extra = decay

        decay = check_today()
        evaluation = evaluate_test()
        evaluation >> decay
        approval_needed(evaluation) >> ask_for_approval(evaluation)
        decay_found(decay) >> announce_decay(decay)

    ab_evaluate_dag()


for model in dag_models(__file__):
    ab_evaluate(model)
