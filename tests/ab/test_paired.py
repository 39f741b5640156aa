"""Paired shadow evaluation (``ab.design: paired``): the test's error rates on simulated shadow
traffic (seeded), its agreement with the one-look code the stage runs, and the stage end to
end on a database with shadow rows and feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from driftloop import registry
from driftloop.ab.paired import PairedTable, paired_test, paired_variance
from driftloop.ab.paired_rows import paired_arms
from driftloop.ab.paired_simulation import paired_decisions_and_records, paired_draws
from driftloop.ab.rows import load_rows
from driftloop.schema import upgrade
from driftloop.settings_loader import ConfigError, load_settings
from driftloop.stages.ab_evaluation import evaluate
from driftloop.stages.promotion import roles
from driftloop.storage import ABTest, Feedback, Prediction, make_engine
from tests.conftest import ROOT

PRODUCTION, STAGING = registry.PRODUCTION, registry.STAGING
ALPHA, TAU, MIN_SAMPLES, LOOK = 0.05, 0.02, 200, 10
LOOKS = ("accuracy", TAU, ALPHA)


def test_paired_design_needs_shadow_mode():
    with pytest.raises(ConfigError, match=r"serving\.default_shadow"):
        load_settings(ROOT / "driftloop.yaml", ab={"design": "paired"})
    paired = load_settings(
        ROOT / "driftloop.yaml", ab={"design": "paired"}, serving={"default_shadow": True}
    )
    assert paired.ab.design == "paired" and paired.serving.default_shadow
    assert load_settings(ROOT / "driftloop.yaml").ab.design == "unpaired"


def test_independent_pairs_have_the_discordance_over_n_as_variance():
    production = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=float)
    staging = np.array([1, 0, 1, 0, 1, 1, 1, 0], dtype=float)
    table = PairedTable.of(production > 0, staging > 0)
    assert (table.both_right, table.only_staging, table.only_production, table.both_wrong) == (
        3,
        2,
        2,
        1,
    )
    d = staging - production
    # 4 discordant of 8; the cluster-robust term with 8 singletons is 8/7 of it
    assert paired_variance(d) == pytest.approx(8 / 7 * 4 / 64)
    result = paired_test(production, staging, TAU, ALPHA, True)
    assert result.difference == 0.0 and not result.significant
    assert result.ci_low < 0 < result.ci_high


@pytest.mark.parametrize(
    "discordance, clients",
    [(0.3, None), (0.3, 1000), (0.01, None), (0.01, 1000)],
    ids=["30%", "30%-sticky", "1%", "1%-sticky"],
)
def test_aa_false_promotions_stay_within_alpha(discordance, clients):
    """Equal error rates on every client; looked at every 10 requests up to 15,000."""
    traffic = paired_draws(100, 15_000, 0.1, seed=11, discordance=discordance, clients=clients)
    decisions, _ = paired_decisions_and_records(traffic, ALPHA, TAU, MIN_SAMPLES, LOOK)
    assert (decisions > 0).mean() <= ALPHA and (decisions < 0).mean() <= ALPHA


def test_a_two_point_gain_is_promoted_within_20000_requests():
    traffic = paired_draws(40, 20_000, 0.1, seed=12, discordance=0.1, lift=0.02, clients=1000)
    decisions, seen = paired_decisions_and_records(traffic, ALPHA, TAU, MIN_SAMPLES, LOOK)
    assert (decisions > 0).mean() >= 0.9 and not (decisions < 0).any()
    assert np.median(seen[decisions > 0]) < 10_000


def test_the_simulation_decides_as_the_one_look_test_does():
    traffic = paired_draws(6, 6_000, 0.1, seed=13, discordance=0.3, lift=0.06, clients=300)
    decisions, seen = paired_decisions_and_records(traffic, ALPHA, TAU, MIN_SAMPLES, LOOK)
    assert (decisions != 0).all()
    for t in range(len(decisions)):
        paired = ~traffic.to_staging[t]

        def look(requests: int, t: int = t, paired: np.ndarray = paired):
            keep = paired[:requests]
            return paired_test(
                traffic.production[t, :requests][keep],
                traffic.staging[t, :requests][keep],
                TAU,
                ALPHA,
                True,
                traffic.client[t, :requests][keep],
            )

        at = look(seen[t])
        assert at.significant and np.sign(at.difference) == decisions[t]
        assert not look(seen[t] - LOOK).significant or seen[t] - LOOK < MIN_SAMPLES


def _shadow_traffic(settings, engine, production, staging, pairs, accuracy, lift, seed, failed=0):
    """Production-served records with feedback and Staging's shadow answers to the same
    records, as the server logs them (same record id), from 60 sticky clients."""
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    rows, feedback = [], []
    for i in range(pairs):
        at = start + timedelta(milliseconds=i)
        record = f"req-{seed}-{i}-0"
        truth = int(rng.choice([5, 6, 7]))
        production_right = rng.random() < accuracy
        # Staging agrees with Production on 70% of records, is right on accuracy + lift
        if rng.random() < 0.7:
            staging_right = production_right
        else:
            staging_right = rng.random() < accuracy + lift / 0.3
        common = {
            "request_id": f"req-{seed}-{i}",
            "record_id": record,
            "model_name": settings.model.name,
            "status": 200,
            "inputs": {},
            "output": None,
            "error": None,
            "latency_ms": None,
            "assignment": "sticky",
            "client_key": f"client-{i % 60}",
            "created_at": at,
        }
        rows.append(
            common
            | {
                "variant": PRODUCTION,
                "model_version": production,
                "shadow": False,
                "latency_ms": 5.0,
                "output": {"prediction": truth if production_right else truth + 1},
            }
        )
        shadow = common | {"variant": STAGING, "model_version": staging, "shadow": True}
        if i < failed:
            rows.append(shadow | {"status": 500, "record_id": None, "error": "shadow failed"})
        else:
            rows.append(
                shadow
                | {
                    "latency_ms": 4.0,
                    "output": {"prediction": truth if staging_right else truth + 1},
                }
            )
        feedback.append(
            {
                "model_name": settings.model.name,
                "record_id": record,
                "value": truth,
                "created_at": at,
            }
        )
    with engine.begin() as connection:
        connection.execute(sa.insert(Prediction), rows)
        connection.execute(sa.insert(Feedback), feedback)


@pytest.fixture
def paired_pair(pair):
    settings, engine, production, staging = pair
    paired = settings.model_copy(
        update={
            "ab": settings.ab.model_copy(update={"design": "paired"}),
            "serving": settings.serving.model_copy(update={"default_shadow": True}),
        }
    )
    return paired, engine, production, staging


def test_a_better_shadow_staging_is_promoted_with_the_paired_table(paired_pair):
    settings, engine, production, staging = paired_pair
    _shadow_traffic(settings, engine, production, staging, 2500, 0.55, 0.08, seed=1)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "promote" and evaluation.acted, evaluation.reason
    assert "paired" in evaluation.sequential.method and evaluation.sequential.ci_low > 0
    table = evaluation.paired["table"]
    assert table["pairs"] == 2500 == evaluation.staging.with_feedback
    assert table["only_staging"] > table["only_production"]
    page = Path(evaluation.html_path).read_text()
    assert "only Staging right" in page and "both wrong" in page and "always-valid" in page
    assert roles(settings) == (staging, None)


def test_staging_numbers_come_from_its_shadow_rows(settings, tmp_path):
    """Pairs are matched by record id; Staging's failed shadow predictions and its own
    prediction time are what its guardrails read."""
    engine = make_engine(f"sqlite:///{tmp_path / 'pairs.db'}")
    upgrade(engine)
    _shadow_traffic(settings, engine, "1", "2", 1500, 0.55, 0.0, seed=2)
    _shadow_traffic(settings, engine, "1", "2", 400, 0.55, 0.0, seed=3, failed=60)
    test = ABTest(
        model_name=settings.model.name,
        production_version="1",
        staging_version="2",
        started_at=datetime.now(UTC) - timedelta(days=1),
    )
    arms = paired_arms(load_rows(engine, test, shadow=True), test, "classification", *LOOKS)
    engine.dispose()
    assert arms.pairs == 1840 == arms.table.pairs == arms.staging.with_feedback
    assert arms.production.with_feedback == 1840 and arms.production.requests == 1900
    assert arms.production.failed_requests == 0
    assert (arms.staging.requests, arms.staging.failed_requests) == (1900, 60)
    assert arms.staging.latency_ms["p99"] == 4.0 and arms.production.latency_ms["p99"] == 5.0
    result = paired_test(arms.production_outcomes, arms.staging_outcomes, TAU, ALPHA, True)
    assert not result.significant and result.ci_low < 0 < result.ci_high
    assert arms.timeline[-1]["difference"]["value"] == pytest.approx(result.difference)
