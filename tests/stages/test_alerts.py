"""Alerts reach a webhook: one message per event type, from the places that raise them, and a
dead receiver never fails the work."""

from __future__ import annotations

import pytest

from driftloop import registry
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stack.processes import free_port
from driftloop.stages import alerts, promotion, role_moves
from driftloop.storage import make_engine
from driftloop.vocabulary import Action
from tests.conftest import ROOT
from tests.support.registry_home import production_and_staging, register_versions


def test_one_message_per_event_type(receiver, settings, tmp_path):
    url, received = receiver
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}, alerts={"webhook_url": url}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    # raised by the DAG tasks (drift_monitor's announce_drift, retrain's gate and its callback)
    assert alerts.send(settings, "drift_detected", "batch 4 drifted", {"batch_id": 4})
    assert alerts.send(settings, "retrain_rejected", "version 3 rejected", {})
    assert alerts.send(settings, "retrain_failed", "train failed", {"task_id": "train"})
    # raised where performance checks are stored (drift_monitor, ab_evaluate, batches label)
    assert alerts.send(settings, "performance_decay", "v1 decayed on batch 4", {})
    assert alerts.send(settings, "performance_estimated_drop", "v1 estimated drop", {})
    # raised by ab_evaluate on the first look that finds a sample-ratio mismatch
    assert alerts.send(settings, "sample_ratio_mismatch", "A/B test 1: 48/52 on a 50/50 split")
    # raised by drift_monitor's check_traffic on a window of served traffic that drifted
    assert alerts.send(settings, "traffic_drift", "served traffic 14:00 to 15:00 drifted: x2")
    # raised by the registry moves, whoever makes them
    promotion.promote(settings, engine, "cli:ops", "better in the A/B test")
    promotion.rollback(settings, engine, "cli:ops", "complaints")
    (third,) = register_versions(settings, 1)
    role_moves.set_role(registry.configure(settings), settings.model.name, third, registry.STAGING)
    promotion.reject(settings, engine, "ab_evaluate", "worse")
    (fourth,) = register_versions(settings, 1)
    role_moves.set_role(registry.configure(settings), settings.model.name, fourth, registry.STAGING)
    promotion.reject(settings, engine, "ab_evaluate", "no difference", action=Action.INCONCLUSIVE)
    # a person's answer to a decision that waited for them and moved nothing (ab.approval),
    # or that came after it was settled
    for answer in (Action.DECLINED, Action.EXPIRED, Action.ANSWERED_LATE):
        promotion.record_answer(settings, engine, answer, (staging, fourth), "airflow", "no", {})
    assert sorted(m["event"] for m in received) == sorted(alerts.EVENTS)
    promoted = next(m for m in received if m["event"] == "promoted")
    assert promoted["model"] == settings.model.name and promoted["details"]["actor"] == "cli:ops"
    assert promoted["details"]["production_after"] == staging and production in promoted["summary"]


def test_a_dead_receiver_is_logged_not_raised(tmp_path, caplog):
    settings = load_settings(
        ROOT / "driftloop.yaml",
        storage={"home": tmp_path / "home"},
        alerts={"webhook_url": f"http://127.0.0.1:{free_port()}/hook", "attempts": 2},
    )
    assert alerts.send(settings, "promoted", "x") is False
    assert "not delivered" in caplog.text


def test_no_webhook_no_alert_and_unknown_events_are_errors(settings):
    assert alerts.send(settings, "promoted", "x") is False
    with pytest.raises(ValueError, match="unknown alert event"):
        alerts.send(settings, "exploded", "x")
