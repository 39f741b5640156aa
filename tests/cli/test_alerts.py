"""Drift and gate alerts are sent where the verdict is recorded, so the command line alerts as
the DAGs do: ``driftloop drift check`` sends drift_detected, and a gate decision (``driftloop
retrain``, the retrain DAG's gate, drift_monitor's re-gate) sends retrain_rejected."""

from __future__ import annotations

from pathlib import Path

from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import role_moves
from driftloop.storage import make_engine
from tests.conftest import ROOT
from tests.support.cli import Cli, Shown, clean_env


def test_drift_check_from_the_cli_sends_drift_detected(settings, receiver, tmp_path: Path):
    url, received = receiver
    replay(settings, "gradual")
    env = clean_env(settings.storage.home, DRIFTLOOP_ALERTS__WEBHOOK_URL=url)
    run = Cli(env, cwd=tmp_path, shown=Shown.OUTPUT_OR_ERROR)

    run("batches", "ingest")
    assert ": no_drift" in run("drift", "check", "1")
    assert received == []  # no drift, no alert
    assert ": drift" in run("drift", "check", "12")
    (message,) = received
    assert message["event"] == "drift_detected" and message["model"] == settings.model.name
    assert message["details"]["batch_id"] == 12 and message["details"]["status"] == "drift"
    assert message["summary"].startswith(f"batch {message['details']['batch_name']} drifted: ")
    assert "(checked before)" in run("drift", "check", "12")
    assert len(received) == 1  # checking a batch again changes nothing, alerts included


def test_a_rejection_at_the_gate_or_a_regate_is_an_alert(receiver, tmp_path: Path):
    from driftloop import registry
    from driftloop.gate.statistics import GateOutcome, GateResult
    from driftloop.stages.gating import apply
    from tests.support.registry_home import register_versions

    url, received = receiver
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}, alerts={"webhook_url": url}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, first, second = register_versions(settings, 3)
    client = registry.configure(settings)
    role_moves.set_role(client, settings.model.name, production, registry.PRODUCTION)

    def gate(version: str, outcome: GateOutcome, trigger: str, attempt: int):
        numbers = {"challenger_score": 0.5, "production_score": 0.6, "difference": -0.1}
        result = GateResult(
            outcome=outcome,
            reason="worse on the holdout",
            metric="accuracy",
            test="paired",
            rows=120,
            low=-0.2,
            high=0.0,
            margin=0.0,
            alpha=0.05,
            attempt=attempt,
            **numbers,
        )
        return apply(
            settings,
            engine,
            client,
            result,
            version=version,
            production_version=production,
            run_id=client.get_model_version(settings.model.name, version).run_id,
            trigger=trigger,
            drift_check_id=None,
        )

    gate(first, GateOutcome.INSUFFICIENT_EVIDENCE, "drift", 1)
    assert received == []  # only a rejection is an alert
    decision = gate(first, GateOutcome.REJECTED, "regate", 2)
    gate(second, GateOutcome.REJECTED, "manual", 1)
    assert [m["event"] for m in received] == ["retrain_rejected", "retrain_rejected"]
    regated, gated = received
    assert regated["summary"] == f"version {first} rejected at its re-gate: {decision.reason}"
    assert regated["details"] == decision.to_dict()
    assert gated["summary"].startswith(f"version {second} rejected at the gate: ")
    engine.dispose()
