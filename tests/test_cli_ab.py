"""status, promote, reject, rollback and the A/B commands as a person runs them, on SQLite and
on PostgreSQL: real processes, confirmation prompts, and the audit log they leave."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from driftloop import registry
from driftloop.promotion import history, roles
from driftloop.settings_loader import load_settings
from driftloop.storage import make_engine, upgrade

from .ab_traffic import send
from .conftest import ROOT
from .registry_home import production_and_staging

DRIFTLOOP = str(ROOT / ".venv/bin/driftloop")


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}, database={"url": database_url}
    )
    engine = make_engine(database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env |= {
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
        "DRIFTLOOP_DATABASE__URL": database_url,
        "USER": "tester",
    }

    def run(*args: str, expect: int = 0, answer: str | None = None) -> str:
        done = subprocess.run(
            [DRIFTLOOP, "--config", str(ROOT / "driftloop.yaml"), *args],
            capture_output=True,
            text=True,
            env=env,
            input=answer,
            cwd=tmp_path,
        )
        assert done.returncode == expect, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout + done.stderr

    yield settings, engine, production, staging, run
    engine.dispose()


def test_status_shows_roles_split_and_the_running_test(home):
    settings, engine, production, staging, run = home
    out = run("status")
    assert f"Production: {production}" in out and f"Staging:    {staging}" in out
    assert "Production 90%, Staging 10%" in out and "A/B test:   none running" in out
    send(settings, engine, registry.PRODUCTION, production, 300, 0.6, seed=1)
    send(settings, engine, registry.STAGING, staging, 300, 0.6, seed=2)
    run("ab", "evaluate")
    out = run("status")
    assert "A/B test 1 since" in out and "300 with feedback" in out and "decision: continue" in out


def test_promote_asks_and_leaves_an_audit_record(home):
    settings, engine, production, staging, run = home
    assert "aborted" in run("promote", "--reason", "looks good", answer="n\n", expect=1)
    assert history(engine, settings.model.name) == []
    out = run("promote", answer="y\nbeat Production in the A/B test\n")
    assert f"promote: Production {production} -> {staging}" in out
    (audit,) = history(engine, settings.model.name)
    assert audit["actor"] == "cli:tester" and audit["reason"] == "beat Production in the A/B test"
    assert f"promote by cli:tester: Production {production} -> {staging}" in run("ab", "history")
    out = run("rollback", "--yes", "--reason", "complaints")
    assert f"rollback: Production {staging} -> {production}" in out
    assert "no earlier Production version" in run("rollback", "--yes", "--reason", "x", expect=1)


def test_reject_archives_staging(home):
    settings, engine, production, staging, run = home
    out = run("reject", "--yes", "--reason", "not needed", "--actor", "ops")
    assert f"reject: Production {production} -> {production}" in out
    assert roles(settings) == (production, None)
    archived = registry.configure(settings).get_model_version(settings.model.name, staging)
    assert archived.current_stage == "Archived" and not archived.aliases
    assert "has no Staging version to reject" in run("reject", "--yes", "--reason", "x", expect=1)
    assert "has no Staging version to promote" in run("promote", "--yes", "--reason", "x", expect=1)
    assert history(engine, settings.model.name)[0]["actor"] == "cli:ops"


def test_simulate_aa_reports_the_false_promotion_rate(home):
    *_, run = home
    out = run("ab", "simulate-aa", "--tests", "200", "--records", "2000")
    found = re.search(r"(\d+) A/A tests, .* false promotion rate ([0-9.]+) \((\d+) tests", out)
    assert found, out
    tests, rate, promoted = int(found[1]), float(found[2]), int(found[3])
    assert tests == 200 and rate == pytest.approx(promoted / tests, abs=5e-4)
    assert rate <= 0.05 / 2  # Staging's side of alpha (driftloop.yaml)
