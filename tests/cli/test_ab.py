"""status, promote, reject, rollback and the A/B commands as a person runs them, on SQLite and
on PostgreSQL: real processes, confirmation prompts, and the audit log they leave."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop import registry
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages.promotion import history, roles
from driftloop.storage import make_engine
from tests.conftest import ROOT
from tests.support.ab_traffic import send
from tests.support.cli import Cli, clean_env
from tests.support.registry_home import production_and_staging


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
    env = clean_env(settings.storage.home, DRIFTLOOP_DATABASE__URL=database_url, USER="tester")
    run = Cli(env, cwd=tmp_path)

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


AB_REPORT = re.compile(
    r"#(?P<id>\d+) test (?P<test>\d+) \(Production vs Staging (?P<pair>\S+ vs \S+)\) "
    r"(?P<at>\S+) (?P<decision>\w+): (?P<metric>\w+) (?P<production>\S+) vs (?P<staging>\S+), "
    r"samples (?P<samples>\d+/\d+), p (?P<p>\S+)\n    report: (?P<report>\S+)\n"
)


def _printed_reports(out: str) -> list[dict]:
    found = list(AB_REPORT.finditer(out))
    assert "".join(m[0] for m in found) == out, out  # nothing but evaluations
    return [m.groupdict() for m in found]


def test_ab_reports_lists_the_evaluations_newest_first(home):
    """Two looks at one test: too few samples (continue), then a clear winner (promote).
    Each listed evaluation says what its stored row says."""
    from driftloop.stages.ab_evaluation import evaluate
    from driftloop.storage import ABEvaluation, ABTest, session_scope

    settings, engine, production, staging, run = home
    assert run("ab", "reports") == "no A/B evaluations yet\n"
    send(settings, engine, registry.PRODUCTION, production, 100, 0.3, seed=1)
    send(settings, engine, registry.STAGING, staging, 100, 0.9, seed=2)
    assert evaluate(settings, engine).decision == "continue"  # 100 < ab.min_samples
    send(settings, engine, registry.PRODUCTION, production, 1500, 0.55, seed=3)
    send(settings, engine, registry.STAGING, staging, 1500, 0.70, seed=4)
    assert evaluate(settings, engine).decision == "promote"

    printed = _printed_reports(run("ab", "reports"))
    with session_scope(engine) as session:
        stored = session.execute(
            sa.select(ABEvaluation, ABTest)
            .join(ABTest, ABTest.id == ABEvaluation.test_id)
            .order_by(ABEvaluation.id.desc())
        ).all()
        assert [p["id"] for p in printed] == [str(e.id) for e, _ in stored]
        for line, (evaluation, test) in zip(printed, stored, strict=True):
            assert line["test"] == str(test.id)
            assert line["pair"] == f"{test.production_version} vs {test.staging_version}"
            assert line["at"] == evaluation.created_at.isoformat()[:19]
            assert (line["decision"], line["metric"]) == (evaluation.decision, evaluation.metric)
            assert float(line["production"]) == pytest.approx(evaluation.production_value, abs=5e-5)
            assert float(line["staging"]) == pytest.approx(evaluation.staging_value, abs=5e-5)
            assert line["samples"] == (
                f"{evaluation.production_samples}/{evaluation.staging_samples}"
            )
            if evaluation.p_value is None:
                assert line["p"] == "n/a"
            else:
                assert float(line["p"]) == pytest.approx(evaluation.p_value, abs=5e-5)
            assert line["report"] == evaluation.html_path and Path(line["report"]).is_file()
    # what the test did, independently of the stored rows
    # (Staging's samples are all it was sent; Production's first rows predate the test)
    assert [(p["decision"], p["pair"], p["samples"].split("/")[1]) for p in printed] == [
        ("promote", f"{production} vs {staging}", "1600"),
        ("continue", f"{production} vs {staging}", "100"),
    ]
    assert float(printed[0]["staging"]) > float(printed[0]["production"])

    (newest,) = _printed_reports(run("ab", "reports", "--limit", "1"))
    assert newest == printed[0]
