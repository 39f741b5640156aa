"""ab.approval: required: a decision waits for a person, once per test; the answer (approve,
reject, none in time) is carried out, audited and alerted; guardrails and the CLI never wait."""

from __future__ import annotations

import pytest

from driftloop import registry
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import alerts, approval, promotion
from driftloop.stages.ab_evaluation import evaluate
from driftloop.stages.promotion import history, roles
from driftloop.storage import ABTest, make_engine, session_scope
from driftloop.vocabulary import ApprovalChoice
from tests.conftest import ROOT
from tests.support.ab_traffic import send
from tests.support.registry_home import production_and_staging

PRODUCTION, STAGING = registry.PRODUCTION, registry.STAGING


@pytest.fixture
def pair(settings, monkeypatch):
    """Approval required; alerts caught; Production v1, a better Staging v2 with feedback."""
    settings = load_settings(
        ROOT / "driftloop.yaml",
        storage={"home": settings.storage.home},
        ab={"approval": "required"},
    )
    sent: list[tuple[str, str, dict]] = []

    def send_alert(_settings, event, text, data):
        assert event in alerts.EVENTS, event  # what the real sender would refuse
        sent.append((event, text, data))

    monkeypatch.setattr("driftloop.stages.alerts.send", send_alert)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.70, seed=2)
    yield settings, engine, production, staging, sent
    engine.dispose()


def test_a_promotion_waits_for_a_person_and_is_asked_once(pair):
    settings, engine, production, staging, _ = pair
    first = evaluate(settings, engine)
    assert first.decision == "promote" and not first.acted
    assert first.approval["status"] == "pending" and first.approval["new"]
    assert roles(settings) == (production, staging)  # traffic stays as it is
    second = evaluate(settings, engine)
    assert second.decision == "promote" and not second.acted
    assert second.approval["id"] == first.approval["id"] and not second.approval["new"]
    assert len(approval.pending(engine, settings.model.name)) == 1


def test_an_approval_promotes_with_the_persons_name_and_comment(pair):
    settings, engine, _production, staging, sent = pair
    waiting = evaluate(settings, engine).approval
    approval.attach_run(engine, waiting["id"], "asset_triggered__1")
    view = approval.settle(
        settings, engine, waiting["id"], ApprovalChoice.APPROVE, "alice", "numbers look right"
    )
    assert view.status == "approved" and view.responded_by == "alice"
    assert roles(settings) == (staging, None)
    (audit,) = history(engine, settings.model.name)
    assert audit["action"] == "promote" and audit["actor"] == "airflow:alice"
    assert "alice chose Approve: numbers look right" in audit["reason"]
    event, text, data = sent[-1]
    assert event == "promoted" and "alice" in text and "numbers look right" in data["reason"]
    with session_scope(engine) as session:
        assert session.get(ABTest, waiting["test_id"]).status == "promoted"
    # the same answer settled again (a retried task) is not a second answer
    retried = approval.settle(
        settings, engine, waiting["id"], ApprovalChoice.APPROVE, "alice", "numbers look right"
    )
    assert retried.status == "approved" and retried.late_answer is None
    assert len(history(engine, settings.model.name)) == 1
    # another answer after it moves nothing, and is kept
    again = approval.settle(settings, engine, waiting["id"], ApprovalChoice.REJECT, "bob")
    assert again.status == "approved" and roles(settings) == (staging, None)
    assert again.late_answer == (
        "answered late by bob (Reject): not carried out: the approval was approved"
    )
    assert history(engine, settings.model.name)[0]["action"] == "answered_late"
    assert sent[-1][0] == "approval_answered_late" and "answered late by bob" in sent[-1][1]


def test_a_rollback_under_required_approval_acts_at_once(pair):
    """A person's rollback is itself the approval: with ``ab.approval: required`` it restores
    the previous Production at once, audited and alerted, and asks nobody."""
    settings, engine, production, staging, sent = pair
    waiting = evaluate(settings, engine).approval
    approval.settle(settings, engine, waiting["id"], ApprovalChoice.APPROVE, "alice", "go")
    assert roles(settings) == (staging, None)
    move = promotion.rollback(settings, engine, "cli:ops", "complaints after the promotion")
    assert roles(settings) == (production, None)
    assert (move.action, move.production_after) == ("rollback", production)
    assert [a["action"] for a in history(engine, settings.model.name)][:2] == [
        "rollback",
        "promote",
    ]
    assert sent[-1][0] == "rolled_back" and "complaints after the promotion" in sent[-1][1]
    assert approval.pending(engine, settings.model.name) == []
    assert evaluate(settings, engine) is None  # no Staging: no test, nothing to approve


def test_a_rejection_moves_nothing_and_is_not_asked_again(pair):
    settings, engine, production, staging, sent = pair
    waiting = evaluate(settings, engine).approval
    view = approval.settle(settings, engine, waiting["id"], ApprovalChoice.REJECT, "bob", "wait")
    assert view.status == "declined"
    assert roles(settings) == (production, staging)
    (audit,) = history(engine, settings.model.name)
    assert audit["action"] == "declined" and audit["actor"] == "airflow:bob"
    assert audit["production_after"] == production and "bob chose Reject: wait" in audit["reason"]
    assert sent[-1][0] == "approval_declined"
    later = evaluate(settings, engine)
    assert later.decision == "promote" and later.approval is None and not later.acted
    assert approval.pending(engine) == []


def test_no_answer_in_time_moves_nothing_and_the_test_goes_on(pair):
    settings, engine, production, staging, sent = pair
    waiting = evaluate(settings, engine).approval
    view = approval.settle(settings, engine, waiting["id"], None)
    assert view.status == "expired" and roles(settings) == (production, staging)
    assert history(engine, settings.model.name)[0]["action"] == "expired"
    assert sent[-1][0] == "approval_expired"
    asked_again = evaluate(settings, engine).approval
    assert asked_again["new"] and asked_again["id"] != waiting["id"]


def test_a_guardrail_rejects_at_once_and_supersedes_the_waiting_approval(pair):
    settings, engine, production, staging, _ = pair
    waiting = evaluate(settings, engine).approval
    send(settings, engine, STAGING, staging, 0, 0.7, seed=9, failed=200)
    evaluation = evaluate(settings, engine)
    assert evaluation.reason.startswith("guardrail") and evaluation.acted
    assert roles(settings) == (production, None)
    (view,) = approval.recent(engine, 1)
    assert view.id == waiting["id"] and view.status == "superseded"
    # a late approval in Airflow moves nothing, and is kept on the approval and audited
    late = approval.settle(settings, engine, waiting["id"], ApprovalChoice.APPROVE, "alice")
    assert late.status == "superseded" and roles(settings) == (production, None)
    assert late.late_answer.startswith(
        "answered late by alice (Approve): not carried out: the approval was superseded"
    )
    audit = history(engine, settings.model.name)[0]
    assert audit["action"] == "answered_late" and audit["reason"] == late.late_answer
    assert audit["production_after"] == production  # nothing moved


def test_an_approval_whose_pair_changed_meanwhile_moves_nothing_and_is_kept(pair):
    settings, engine, production, staging, sent = pair
    waiting = evaluate(settings, engine).approval
    # the registry moves without going through the approval (say, another tool)
    promotion.promote(settings, engine, "someone", "not through driftloop's approval")
    view = approval.settle(settings, engine, waiting["id"], ApprovalChoice.APPROVE, "alice", "ok")
    assert view.status == "superseded" and view.responded_by == "alice"
    assert roles(settings) == (staging, None)  # what the other move left, untouched
    assert view.late_answer.startswith("answered late by alice (Approve: ok): not carried out: ")
    assert f"v{production}" in view.late_answer  # the pair it was asked about
    assert history(engine, settings.model.name)[0]["action"] == "answered_late"
    assert sent[-1][0] == "approval_answered_late"


def test_auto_approval_acts_at_once(settings):
    assert settings.ab.approval == "auto"
    assert not approval.waits(settings, "promote", "Staging is better")


def test_only_listed_decisions_wait(pair):
    settings = pair[0]
    assert approval.waits(settings, "promote", "Staging is better")
    assert not approval.waits(settings, "reject", "Staging is worse")
    assert not approval.waits(settings, "promote", "guardrail: whatever")


def test_answering_in_airflow_without_url_or_token_says_what_is_pending(pair):
    settings, engine, *_ = pair
    waiting = approval.ApprovalView(**{**evaluate(settings, engine).approval, "dag_run_id": "r1"})
    message = approval.answer_in_airflow(settings, waiting, ApprovalChoice.APPROVE, "ok")
    assert f"approval #{waiting.id}" in message and "still waits" in message
    assert "airflow.api_url" in message
    with_url = settings.model_copy(
        update={"airflow": settings.airflow.model_copy(update={"api_url": "http://x"})}
    )
    message = approval.answer_in_airflow(with_url, waiting, ApprovalChoice.APPROVE, "ok")
    assert "DRIFTLOOP_AIRFLOW__TOKEN" in message


def test_bad_approval_settings_are_refused(settings):
    from driftloop.settings_loader import ConfigError

    with pytest.raises(ConfigError, match=r"ab\.approval: Input should be 'auto' or 'required'"):
        load_settings(ROOT / "driftloop.yaml", ab={"approval": "sometimes"})
    with pytest.raises(ConfigError, match="at least one"):
        load_settings(ROOT / "driftloop.yaml", ab={"approval_actions": []})
    with pytest.raises(ConfigError, match=r"airflow\.api_url.*http"):
        load_settings(ROOT / "driftloop.yaml", airflow={"api_url": "localhost:8080"})


def test_a_person_at_the_cli_settles_the_waiting_approval_and_is_told_what_waits(pair, monkeypatch):
    from typer.testing import CliRunner

    from driftloop.cli.app import app

    settings, engine, _production, staging, _ = pair
    waiting = evaluate(settings, engine).approval
    approval.attach_run(engine, waiting["id"], "asset_triggered__7")
    monkeypatch.setenv("DRIFTLOOP_STORAGE__HOME", str(settings.storage.home))
    monkeypatch.setenv("DRIFTLOOP_AB__APPROVAL", "required")
    result = CliRunner().invoke(
        app,
        ["--config", str(ROOT / "driftloop.yaml"), "promote", "--yes", "--reason", "by hand"],
    )
    assert result.exit_code == 0, result.output
    assert roles(settings) == (staging, None)
    assert f"approval #{waiting['id']} (promote of Staging v{staging}) still waits" in result.output
    assert "run asset_triggered__7" in result.output and "airflow.api_url" in result.output
    (view,) = approval.recent(engine, 1)
    assert view.status == "superseded" and view.comment == "promote by hand: by hand"
    # the CLI's own answer in Airflow (to release the waiting task) is no late answer ...
    echo = approval.settle(settings, engine, view.id, ApprovalChoice.APPROVE, "root", view.comment)
    assert echo.status == "superseded" and echo.late_answer is None
    assert history(engine, settings.model.name)[0]["action"] == "promote"
    # ... another person's is: it moves nothing and is kept
    late = approval.settle(settings, engine, view.id, ApprovalChoice.REJECT, "bob")
    assert late.status == "superseded" and roles(settings) == (staging, None)
    assert late.late_answer == (
        "answered late by bob (Reject): not carried out: the approval was superseded"
    )
