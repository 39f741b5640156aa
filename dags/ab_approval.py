"""ab_approval: a person approves (or not) a decision of ``ab_evaluate`` before it moves the
registry, the Airflow way (``ab.approval: required``).

Started by an event on ``driftloop://approval`` carrying the waiting approval's id and its
timeout: describe it -> wait for a person in Airflow's human-in-the-loop task (Approve or Reject,
with a comment; only ``ab.approvers`` may answer when set) -> settle: an approval carries the
decision out, a rejection or no answer moves nothing. The person's choice, name and comment go
into the audit log and the alert.

When the timeout passes, Airflow records the task's default answer (Reject, by nobody) so that
it refuses any later answer (409) instead of storing one that nothing would read; the task then
fails ("nobody answered in time"), so the run's task states say whether a person answered, and
settle records the expiry. Logic lives in ``driftloop.stages.approval``; heavy imports happen
inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Asset, Param, dag, task

from driftloop.events import APPROVAL_ASSET_URI, APPROVAL_DAG_ID, APPROVAL_TASK_ID
from driftloop.orchestration.dag_support import default_args
from driftloop.orchestration.model_dags import ModelDags, dag_models


class ApprovalOperator(HITLOperator):
    """Airflow's human-in-the-loop task with the deadline the approval carries (``describe``
    returns it), and a timeout that fails the task although Airflow recorded its default.

    Airflow 3.3.2 can fail a try that a person answered within seconds of its parking: the
    parking workload's "success" reaches the scheduler after the answer re-queued the task,
    which it takes for a state changed externally. So the task has one retry, and a retry
    must not ask again (the upsert would erase the recorded answer): it waits for the answer
    through Airflow's HITLTrigger on the triggerer, up to the same deadline. Only the
    triggerer may read an answer back: a task's supervisor refuses that request ("Unhandled
    request", Airflow 3.3.2), so the retry cannot read it in the task itself."""

    def execute(self, context):
        described = context["ti"].xcom_pull(task_ids="describe")
        self.response_timeout = timedelta(seconds=described["timeout_seconds"])
        if context["task_instance"].try_number > 1:
            self.wait_for_the_recorded_answer(context, described)
        return super().execute(context)

    def wait_for_the_recorded_answer(self, context, described: dict) -> None:
        """Defer to the triggerer until the answer already recorded (or the deadline's
        default) is read back; ``execute_complete`` takes it from there."""
        from airflow.providers.standard.triggers.hitl import HITLTrigger

        self.defer(
            trigger=HITLTrigger(
                ti_id=context["task_instance"].id,
                options=self.options,
                defaults=self.defaults,
                params=self.serialized_params,
                multiple=self.multiple,
                timeout_datetime=datetime.fromisoformat(described["expires_at"]),
                poke_interval=1.0,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event):
        if "error" not in event and not event.get("responded_by_user"):
            # Airflow's default answer at the deadline, not a person's
            # a resumed task runs in a new process: the timeout is the one describe set
            seconds = context["ti"].xcom_pull(task_ids="describe")["timeout_seconds"]
            raise HITLTimeoutError(f"nobody answered within {timedelta(seconds=seconds)}")
        return super().execute_complete(context, event)


def ab_approval(model: ModelDags) -> None:
    """The ab_approval DAG of one model, started by that model's approval Asset."""
    approval_asset = Asset(model.asset_uri(APPROVAL_ASSET_URI))

    @dag(
        dag_id=model.dag_id(APPROVAL_DAG_ID),
        schedule=[approval_asset],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args=default_args(retries=2),
        tags=model.tags,
        doc_md=__doc__,
    )
    def ab_approval_dag() -> None:
        @task
        def describe(triggering_asset_events=None, run_id=None) -> dict:
            """The waiting approval this run asks about and how long the person has; its run and
            deadline are noted for the CLI and the page."""
            from driftloop.stages.approval import attach_run, timeout_of

            events = list((triggering_asset_events or {}).get(approval_asset, []))
            if not events:
                raise ValueError(
                    "ab_approval starts from a driftloop://approval event, not by hand"
                )
            extra = events[-1].extra
            settings, engine = model.open()
            timeout = timeout_of(settings, extra)
            view = attach_run(engine, int(extra["approval_id"]), run_id, timeout)
            body = (
                f"**A/B test {view.test_id}**: Production v{view.production_version}, "
                f"Staging v{view.staging_version}\n\n{view.reason}\n\n"
                "Approve carries the decision out; Reject moves nothing (and ab_evaluate will not "
                f"ask again in this test). No answer by {view.expires_at} (UTC) moves nothing; the "
                "test goes on, and Airflow refuses answers after that."
            )
            return {
                "approval_id": view.id,
                "subject": view.subject,
                "body": body,
                "timeout_seconds": timeout.total_seconds(),
                "expires_at": _aware(view.expires_at).isoformat(),  # a retry's deadline
            }

        wait = ApprovalOperator(
            task_id=APPROVAL_TASK_ID,
            subject="{{ ti.xcom_pull(task_ids='describe')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='describe')['body'] }}",
            options=["Approve", "Reject"],
            defaults=["Reject"],  # recorded at the deadline: a later answer is refused, not lost
            params={
                "comment": Param("", type="string", description="Why (kept in the audit log).")
            },
            assigned_users=[{"id": user, "name": user} for user in model.settings.ab.approvers]
            or None,
            # the fallback: each run takes the timeout its approval event carries
            response_timeout=timedelta(hours=model.settings.ab.approval_timeout_hours),
            retries=1,  # only for Airflow's race above: a retry re-asks nobody (see execute)
            retry_delay=timedelta(seconds=2),
        )

        @task(trigger_rule="all_done")
        def settle(described: dict, ti=None) -> dict:
            """The person's answer carried out; no answer (the timeout) moves nothing."""
            from driftloop.stages.approval import settle as settle_approval
            from driftloop.vocabulary import ApprovalChoice

            answer = ti.xcom_pull(task_ids=APPROVAL_TASK_ID) or {}
            chosen = answer.get("chosen_options") or []
            person = (answer.get("responded_by_user") or {}).get("name")
            comment = (answer.get("params_input") or {}).get("comment") or None
            choice = ApprovalChoice(chosen[0]) if chosen else None
            view = settle_approval(*model.open(), described["approval_id"], choice, person, comment)
            print(
                f"approval #{view.id}: {view.status} ({choice or 'no answer'} by {person or '-'})"
            )
            return view.to_dict()

        described = describe()
        described >> wait >> settle(described)

    ab_approval_dag()


def _aware(moment: str) -> datetime:
    """The approval's ISO time as an aware UTC datetime (the row stores UTC)."""
    value = datetime.fromisoformat(moment)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


for model in dag_models(__file__):
    ab_approval(model)
