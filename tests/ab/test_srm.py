"""Sample-ratio mismatch (issue 27, item 2): the mixture SPRT's error rates when looked at
every 100 requests, and what a mismatch does to an A/B test's decision, report, alerts,
/metrics and the overview page."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from driftloop.ab.srm import SRM_ALPHA, check, log_bayes_factors
from driftloop.ab.traffic import TrafficSplit, client_hash
from driftloop.reports.ab import render_html
from driftloop.stages.ab_evaluation import evaluate
from driftloop.stages.traffic_split import save_split
from driftloop.storage import Prediction
from driftloop.ui.gauges import loop_gauges
from driftloop.ui.overview import overview
from driftloop.ui.overview_page import render_page
from driftloop.vocabulary import ABDecision
from tests.support.ab_traffic import send

THRESHOLD = math.log(1 / SRM_ALPHA)


def _ever_alarmed(share: float, tests: int, requests: int, seed: int) -> np.ndarray:
    """Per test, whether the check ever alarms, looked at every 100 random requests."""
    rng = np.random.default_rng(seed)
    looks = np.arange(100, requests + 1, 100)
    staging = np.cumsum(rng.binomial(100, share, (tests, len(looks))), axis=1)
    return (log_bayes_factors(staging, looks[None, :], 0.5) >= THRESHOLD).any(axis=1)


def test_a_48_52_fault_is_caught_within_20000_requests():
    """The issue's bar: at least 90% of runs; the full 5,000-run figure is in the benchmark."""
    assert _ever_alarmed(0.52, 1000, 20_000, seed=1).mean() >= 0.9


def test_false_alarms_over_200000_requests_stay_rare():
    """2,000 A/A runs of 200,000 requests, 2,000 looks each: the always-valid bound is 0.1%
    (the 20,000-run figure is in the benchmark); allow 3 standard errors of 2,000 runs."""
    alarms = _ever_alarmed(0.5, 2000, 200_000, seed=2).mean()
    assert alarms <= SRM_ALPHA + 3 * math.sqrt(SRM_ALPHA / 2000), alarms


def test_the_bayes_factor_matches_the_beta_binomial_closed_form():
    """BF = B(a_s + k, a_p + n - k) / B(a_s, a_p) / (pi**k (1 - pi)**(n - k))."""
    from scipy import special

    k, n, share = 530, 1000, 0.5
    a = 1000.0 * share
    expected = special.betaln(a + k, a + n - k) - special.betaln(a, a) - n * math.log(0.5)
    result = check("requests", n - k, k, share)
    assert result.log_bayes_factor == pytest.approx(expected, rel=1e-12)
    assert result.p_value == pytest.approx(min(1.0, math.exp(-expected)))


def test_a_mismatch_stops_a_promotion_and_says_so(pair, monkeypatch):
    """A clearly better Staging, but Staging got 400 random requests against Production's
    1,000 under a saved 50/50 split: no promotion, the reason and report say why, one alert."""
    settings, engine, production, staging = pair
    version = save_split(engine, settings.model.name, TrafficSplit(0.5), "test")
    sent = []
    monkeypatch.setattr(
        "driftloop.stages.alerts.send", lambda _s, event, summary, details=None: sent.append(event)
    )
    start = datetime.now(UTC)  # after the save: the rows were routed under it
    send(settings, engine, "production", production, 1000, 0.55, seed=1, start=start)
    send(settings, engine, "staging", staging, 400, 0.85, seed=2, start=start)
    with engine.begin() as connection:
        connection.execute(sa.update(Prediction).values(split_version=version))
    first = evaluate(settings, engine)
    assert first.decision == ABDecision.CONTINUE and first.sequential.significant
    assert first.reason.startswith("sample-ratio mismatch") and "Staging is better" in first.reason
    assert [c.mismatch for c in first.srm] == [True, True]
    html = Path(first.html_path).read_text(encoding="utf-8")
    assert "Sample-ratio mismatch" in html and "MISMATCH" in html
    evaluate(settings, engine)  # the mismatch persists: no second alert
    assert sent == ["sample_ratio_mismatch"]
    # /metrics and the overview page say so too
    gauges = {g.name: dict(g.samples) for g in loop_gauges(engine, settings.model.name)}
    assert gauges["driftloop_ab_sample_ratio_mismatch"] == {("requests",): 1.0, ("feedback",): 1.0}
    assert gauges["driftloop_ab_sample_ratio_p_value"][("requests",)] <= SRM_ALPHA
    shares = gauges["driftloop_ab_sample_ratio_staging_share"]
    assert shares[("requests", "observed")] == pytest.approx(400 / 1400)
    assert shares[("requests", "expected")] == 0.5
    page = render_page(overview(settings, engine), "/driftloop")
    line = page[page.index("data-testid='ab-srm'") :]
    assert "no decision while the counts do not match the split" in line
    assert "Staging 400 of 1400 (28.57%) against the split&#x27;s 50.00%: MISMATCH" in line


def test_a_matching_split_lets_the_test_promote_and_sticky_clients_are_clusters(pair):
    """The same clearly better Staging: promoted from 600 random requests per arm; the same
    rows sent by 12 sticky clients per arm (their hashed keys in the log) are 12 clusters each:
    no decision."""
    settings, engine, production, staging = pair
    version = save_split(engine, settings.model.name, TrafficSplit(0.5), "test")
    start = datetime.now(UTC)  # after the save: the rows were routed under it
    send(settings, engine, "production", production, 600, 0.55, seed=1, start=start)
    send(settings, engine, "staging", staging, 600, 0.85, seed=2, start=start)
    with engine.begin() as connection:
        connection.execute(sa.update(Prediction).values(split_version=version))
    evaluation = evaluate(settings, engine, act=False)
    assert evaluation.decision == ABDecision.PROMOTE
    assert [c.mismatch for c in evaluation.srm] == [False, False]
    gauges = {g.name: dict(g.samples) for g in loop_gauges(engine, settings.model.name)}
    assert gauges["driftloop_ab_sample_ratio_mismatch"] == {("requests",): 0.0, ("feedback",): 0.0}
    page = render_page(overview(settings, engine), "/driftloop")
    assert "Sample-ratio check: the counts match the split" in page
    with engine.begin() as connection:
        for variant in ("production", "staging"):
            ids = connection.scalars(
                sa.select(Prediction.id).where(Prediction.variant == variant)
            ).all()
            for i, row_id in enumerate(ids):
                client = client_hash(f"{variant}-client-{i % 12}")
                connection.execute(
                    sa.update(Prediction)
                    .where(Prediction.id == row_id)
                    .values(assignment="sticky", client_key=client)
                )
    sticky = evaluate(settings, engine, act=False)
    result = sticky.sequential
    assert (result.production_clusters, result.staging_clusters) == (12, 12)
    assert (
        sticky.decision == ABDecision.CONTINUE and "12 Staging and 12 Production" in sticky.reason
    )


def test_a_report_written_before_the_check_still_renders():
    """Reports stored before issue 27 have no ``srm`` and a sequential record without method."""
    stats = {
        "version": "1",
        "answered": 10,
        "with_feedback": 10,
        "metrics": {"accuracy": {"value": 0.5, "low": 0.2, "high": 0.8}},
        "failed_requests": 0,
        "requests": 10,
        "error_rate": 0.0,
        "latency_ms": {"p50": 1.0, "p99": 2.0},
    }
    old = {
        "test_id": 1,
        "production_version": "1",
        "staging_version": "2",
        "started_at": "2026-01-01",
        "evaluated_at": "2026-01-02",
        "metric": "accuracy",
        "decision": "continue",
        "reason": "collecting",
        "production": stats,
        "staging": stats,
        "sequential": {"difference": 0.0, "ci_low": -0.1, "ci_high": 0.1, "p_value": 1.0,
                       "alpha": 0.05},
        "timeline": [],
    }  # fmt: skip
    page = render_html(old)
    assert "A/B test 1" in page and "Sample-ratio mismatch" not in page
