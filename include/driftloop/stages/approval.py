"""A person's approval before the registry moves (``ab.approval: required``).

``ab_evaluate`` hands a decision listed in ``ab.approval_actions`` over instead of acting on it:
``request`` stores it as the test's one pending approval and the DAG announces it on the Asset
``driftloop://approval``; the ``ab_approval`` DAG asks a person through Airflow's
human-in-the-loop operator and calls ``settle`` with the answer (or with none, on timeout).
While an approval waits, traffic stays as it is and later looks do not ask again. Guardrail
rejections never wait. Every settlement leaves an audit record and an alert with the person's
choice, name and comment; only an approval moves the registry.

Airflow is only reached through its REST API, by ``answer_in_airflow`` (``driftloop promote`` /
``reject`` settling a waiting approval by hand), so the library stays free of Airflow imports.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from driftloop.events import APPROVAL_DAG_ID, APPROVAL_TASK_ID
from driftloop.registry import RegistryError
from driftloop.stages import promotion
from driftloop.stages.ab_tests import ENDED, close_test
from driftloop.storage import Approval, session_scope
from driftloop.vocabulary import ABDecision, Action, ApprovalChoice, ApprovalStatus

if TYPE_CHECKING:
    from driftloop.config import Settings
    from driftloop.stages.ab_tests import Evaluation

GUARDRAIL = "guardrail:"  # how evaluate's guardrail rejections begin; they never wait


@dataclass(frozen=True)
class ApprovalView:
    """One approval as the DAG, the CLI and the page see it."""

    id: int
    test_id: int
    evaluation_id: int | None
    decision: str
    reason: str
    production_version: str | None
    staging_version: str
    status: str
    dag_run_id: str | None
    responded_by: str | None
    comment: str | None
    audit_id: int | None
    requested_at: str
    settled_at: str | None
    expires_at: str | None  # when the Airflow run that asks stops waiting
    late_answer: str | None  # an answer that came after the approval was settled
    new: bool = False  # created by this look (announce it), not found waiting

    @classmethod
    def of(cls, row: Approval, new: bool = False) -> ApprovalView:
        return cls(
            row.id,
            row.test_id,
            row.evaluation_id,
            row.decision,
            row.reason,
            row.production_version,
            row.staging_version,
            row.status,
            row.dag_run_id,
            row.responded_by,
            row.comment,
            row.audit_id,
            row.requested_at.isoformat(),
            row.settled_at.isoformat() if row.settled_at else None,
            row.expires_at.isoformat() if row.expires_at else None,
            row.late_answer,
            new,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject(self) -> str:
        if self.decision == ABDecision.PROMOTE:
            return f"Promote Staging v{self.staging_version} to Production?"
        return f"{self.decision.capitalize()}: archive Staging v{self.staging_version}?"


def waits(settings: Settings, decision: ABDecision, reason: str) -> bool:
    """Whether this decision waits for a person: required, listed, and not a guardrail."""
    ab = settings.ab
    return (
        ab.approval == "required"
        and decision in ab.approval_actions
        and not reason.startswith(GUARDRAIL)
    )


def request(engine: sa.Engine, evaluation: Evaluation) -> ApprovalView | None:
    """The test's pending approval, created for this decision when there is none. None when a
    person already declined this decision in this test: their answer stands."""
    with session_scope(engine) as session:
        rows = session.scalars(
            sa.select(Approval).where(Approval.test_id == evaluation.test_id)
        ).all()
        for row in rows:
            if row.status == ApprovalStatus.PENDING:
                return ApprovalView.of(row)
        if any(
            r.status == ApprovalStatus.DECLINED and r.decision == evaluation.decision for r in rows
        ):
            return None
        row = Approval(
            model_name=evaluation.model_name,
            test_id=evaluation.test_id,
            evaluation_id=evaluation.evaluation_id,
            decision=evaluation.decision,
            reason=evaluation.reason,
            production_version=evaluation.production_version,
            staging_version=evaluation.staging_version,
            status=ApprovalStatus.PENDING,
            requested_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        return ApprovalView.of(row, new=True)


def attach_run(
    engine: sa.Engine, approval_id: int, dag_run_id: str, timeout: timedelta | None = None
) -> ApprovalView:
    """Note the Airflow run that asks the person, so the CLI can answer it too, and when that
    run stops waiting (``timeout`` from now), so the page can say it."""
    with session_scope(engine) as session:
        row = _get(session, approval_id)
        row.dag_run_id = dag_run_id
        if timeout is not None:
            row.expires_at = datetime.now(UTC) + timeout
        return ApprovalView.of(row)


def timeout_of(settings: Settings, event_extra: dict[str, Any]) -> timedelta:
    """How long the person has: the approval event's ``timeout_hours`` (set by the look that
    asked), else ``ab.approval_timeout_hours``."""
    hours = event_extra.get("timeout_hours")
    return timedelta(
        hours=float(hours if hours is not None else settings.ab.approval_timeout_hours)
    )


def pending(engine: sa.Engine, model_name: str | None = None) -> list[ApprovalView]:
    """Approvals still waiting, oldest first: ``model_name``'s (every model's when None)."""
    query = sa.select(Approval).where(Approval.status == ApprovalStatus.PENDING)
    if model_name is not None:
        query = query.where(Approval.model_name == model_name)
    with session_scope(engine) as session:
        return [ApprovalView.of(row) for row in session.scalars(query.order_by(Approval.id))]


def recent(engine: sa.Engine, limit: int = 10, model_name: str | None = None) -> list[ApprovalView]:
    """The newest approvals first: ``model_name``'s (every model's when None)."""
    query = sa.select(Approval).order_by(Approval.id.desc()).limit(limit)
    if model_name is not None:
        query = query.where(Approval.model_name == model_name)
    with session_scope(engine) as session:
        rows = session.scalars(query)
        return [ApprovalView.of(row) for row in rows]


def settle(
    settings: Settings,
    engine: sa.Engine,
    approval_id: int,
    choice: ApprovalChoice | None,
    person: str | None = None,
    comment: str | None = None,
) -> ApprovalView:
    """Carry out a person's answer: Approve moves the registry (only if the pair is still the
    one decided on), Reject moves nothing and stands for this test, no answer (``choice`` None:
    the timeout) moves nothing and lets the test go on. An answer to an approval no longer
    pending (settled by the CLI or a guardrail), or whose pair changed, moves nothing and is
    kept as a late answer: on the approval, in the audit log and in an alert."""
    with session_scope(engine) as session:
        view = ApprovalView.of(_get(session, approval_id))
    if view.status != ApprovalStatus.PENDING:
        if choice is None or _settled_by_this_answer(view, person, comment):
            return view
        return _answered_late(
            settings, engine, view, choice, person, comment, f"the approval was {view.status}"
        )
    who = f"airflow:{person}" if person else "airflow"
    said = f"{person or 'nobody'} chose {choice or 'nothing'}" + (f": {comment}" if comment else "")
    evidence = {
        "approval_id": view.id,
        "evaluation_id": view.evaluation_id,
        "choice": str(choice) if choice else None,
        "responded_by": person,
        "comment": comment,
    }
    pair = (view.production_version, view.staging_version)
    audit_id, status = None, ApprovalStatus.EXPIRED
    if choice == ApprovalChoice.APPROVE:
        reason = f"{view.reason}; approved: {said}"
        try:
            if view.decision == ABDecision.PROMOTE:
                move = promotion.promote(
                    settings, engine, who, reason, evidence, view.test_id, expected=pair
                )
            else:
                move = promotion.reject(
                    settings,
                    engine,
                    who,
                    reason,
                    evidence,
                    view.test_id,
                    action=Action(view.decision),
                    expected=pair,
                )
        except RegistryError as exc:  # the pair changed while the person thought
            asked = f"Production v{view.production_version}, Staging v{view.staging_version}"
            why = f"the pair it was asked about ({asked}) changed: {exc}"
            return _answered_late(settings, engine, view, choice, person, comment, why, True)
        else:
            audit_id, status = move.audit_id, ApprovalStatus.APPROVED
            close_test(engine, view.test_id, ENDED[ABDecision(view.decision)], view.reason)
    elif choice == ApprovalChoice.REJECT:
        status = ApprovalStatus.DECLINED
        reason = f"{view.decision} declined: {said}; nothing moved, the test goes on"
        audit_id = promotion.record_answer(
            settings, engine, Action.DECLINED, pair, who, reason, evidence, view.test_id
        )
    else:
        reason = f"{view.decision} not approved in time: nothing moved, the test goes on"
        audit_id = promotion.record_answer(
            settings, engine, Action.EXPIRED, pair, who, reason, evidence, view.test_id
        )
    return _close(engine, approval_id, status, person, comment, audit_id)


def supersede(engine: sa.Engine, test_id: int, who: str, why: str) -> list[ApprovalView]:
    """Something else settled the test (a guardrail, a person at the CLI): its waiting approval
    no longer moves anything, whatever Airflow is told later. ``why`` becomes the approval's
    comment; an answer in Airflow with that very comment is the settlement's own (the CLI
    releasing the waiting task), any other is a late answer."""
    with session_scope(engine) as session:
        ids = session.scalars(
            sa.select(Approval.id).where(
                Approval.test_id == test_id, Approval.status == ApprovalStatus.PENDING
            )
        ).all()
    return [_close(engine, i, ApprovalStatus.SUPERSEDED, who, why, None) for i in ids]


def answer_in_airflow(
    settings: Settings,
    view: ApprovalView,
    choice: ApprovalChoice,
    comment: str,
    dag_id: str = APPROVAL_DAG_ID,
) -> str:
    """Answer the waiting human-in-the-loop task through Airflow's REST API when
    ``airflow.api_url`` and a token are set; otherwise say what is left pending. ``dag_id``:
    the model's approval DAG (``ab_approval__<name>`` in a config with ``models:``)."""
    api, token = settings.airflow.api_url, settings.airflow.token
    waiting = (
        f"approval #{view.id} ({view.decision} of Staging v{view.staging_version}) still waits "
        f"in Airflow (DAG {dag_id}, run {view.dag_run_id or 'not started yet'})"
    )
    if not api or token is None or not view.dag_run_id:
        missing = "airflow.api_url" if not api else "a token (DRIFTLOOP_AIRFLOW__TOKEN)"
        if api and token is not None:
            missing = "its Airflow run"
        return (
            f"{waiting}: answer it there or let it expire; it moves nothing now. "
            f"(Without {missing} driftloop cannot answer it for you.)"
        )
    url = (
        f"{api}/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(view.dag_run_id)}"
        f"/taskInstances/{APPROVAL_TASK_ID}/-1/hitlDetails"
    )
    body = json.dumps({"chosen_options": [str(choice)], "params_input": {"comment": comment}})
    call = urllib.request.Request(
        url,
        data=body.encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {token.get_secret_value()}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(call, timeout=15):
            pass
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        return f"{waiting}: Airflow refused the answer ({exc.code}: {detail})"
    except OSError as exc:
        return f"{waiting}: Airflow at {api} is unreachable ({exc})"
    return f"answered approval #{view.id} in Airflow: {choice} (run {view.dag_run_id})"


def _settled_by_this_answer(view: ApprovalView, person: str | None, comment: str | None) -> bool:
    """The answer that settled the approval, seen again: the CLI releasing the Airflow task it
    had settled (``supersede``'s comment), or a retried settle (the same person and comment)."""
    if comment is None or comment != view.comment:
        return False
    return view.status == ApprovalStatus.SUPERSEDED or view.responded_by == person


def _answered_late(
    settings: Settings,
    engine: sa.Engine,
    view: ApprovalView,
    choice: ApprovalChoice,
    person: str | None,
    comment: str | None,
    why: str,
    settles: bool = False,
) -> ApprovalView:
    """An answer that came too late to count: never carried out, never lost. It is kept on the
    approval, audited and alerted; ``settles`` closes a still-pending approval as superseded."""
    said = f"answered late by {person or 'an unnamed user'} ({choice}" + (
        f": {comment}" if comment else ""
    )
    said += f"): not carried out: {why}"
    evidence = {"approval_id": view.id, "choice": str(choice), "responded_by": person}
    audit_id = promotion.record_answer(
        settings,
        engine,
        Action.ANSWERED_LATE,
        (view.production_version, view.staging_version),
        f"airflow:{person}" if person else "airflow",
        said,
        {**evidence, "comment": comment, "evaluation_id": view.evaluation_id},
        view.test_id,
    )
    if settles:
        _close(engine, view.id, ApprovalStatus.SUPERSEDED, person, comment, audit_id)
    with session_scope(engine) as session:
        row = _get(session, view.id)
        row.late_answer = said
        return ApprovalView.of(row)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _get(session: Any, approval_id: int) -> Approval:
    row = session.get(Approval, approval_id)
    if row is None:
        raise LookupError(f"no approval #{approval_id}")
    return row


def _close(
    engine: sa.Engine,
    approval_id: int,
    status: ApprovalStatus,
    person: str | None,
    comment: str | None,
    audit_id: int | None,
) -> ApprovalView:
    with session_scope(engine) as session:
        row = _get(session, approval_id)
        row.status, row.settled_at = status, datetime.now(UTC)
        row.responded_by, row.comment, row.audit_id = person, comment, audit_id
        return ApprovalView.of(row)
