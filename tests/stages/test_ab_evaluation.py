"""A/B decisions on simulated feedback: promote, reject, keep collecting, give up; guardrails;
Production's decay; and the registry, audit log and reports that follow."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from driftloop import registry
from driftloop.ab.statistics import request_outcomes
from driftloop.stages import role_moves
from driftloop.stages.ab_evaluation import _act, _usable_truth, evaluate, running_test
from driftloop.stages.performance_check import check_day, take_decay
from driftloop.stages.promotion import history, promote, roles, rollback
from driftloop.storage import ABTest, session_scope
from tests.support.ab_traffic import send
from tests.support.performance import known_reference
from tests.support.registry_home import register_versions

PRODUCTION, STAGING = registry.PRODUCTION, registry.STAGING


def test_no_test_before_staging_answers_anything(pair):
    settings, engine, *_ = pair
    assert running_test(settings, engine) is None
    assert evaluate(settings, engine) is None


def test_better_staging_is_promoted_with_its_evidence(pair):
    settings, engine, production, staging = pair
    client = registry.configure(settings)
    other = _another_model(client, settings, production)  # in the same MLflow store
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.70, seed=2)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "promote" and evaluation.acted, evaluation.reason
    assert evaluation.sequential.significant and evaluation.sequential.difference > 0
    assert evaluation.sequential.ci_low > 0
    assert roles(settings) == (staging, None)
    # aliases and stages are per registered model: the other model's moved nothing
    for version, alias, stage in (
        (other[0], PRODUCTION, "Production"),
        (other[1], STAGING, "Staging"),
    ):
        found = client.get_model_version("other-model", version)
        assert (found.aliases, found.current_stage) == ([alias], stage)
    assert client.get_model_version(settings.model.name, production).current_stage == "Archived"
    assert client.get_model_version(settings.model.name, staging).current_stage == "Production"
    (audit,) = history(engine, settings.model.name)
    assert audit["action"] == "promote" and audit["actor"] == "ab_evaluate"
    assert audit["production_before"] == production and audit["production_after"] == staging
    record = json.loads(Path(evaluation.json_path).read_text())
    assert record["decision"] == "promote" and record["move"]["production_after"] == staging
    page = Path(evaluation.html_path).read_text()
    assert page.count("data:image/png;base64,") == 2 and "always-valid" in page
    with session_scope(engine) as session:
        assert session.get(ABTest, evaluation.test_id).status == "promoted"
    assert evaluate(settings, engine) is None  # no Staging left: no test


def _another_model(client, settings, version: str) -> tuple[str, str]:
    """A second registered model of the same logged model, its versions 1 and 2 in
    Production and Staging: the roles ``pair`` gives the test's own model."""
    import mlflow

    source = f"models:/{settings.model.name}/{version}"
    role_moves.ensure_registered_model(client, "other-model")
    first, second = (str(mlflow.register_model(source, "other-model").version) for _ in range(2))
    role_moves.set_role(client, "other-model", first, PRODUCTION)
    role_moves.set_role(client, "other-model", second, STAGING)
    return first, second


def test_worse_staging_is_rejected_and_production_stays(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 1500, 0.65, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.50, seed=2)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "reject" and "worse" in evaluation.reason
    assert roles(settings) == (production, None)
    version = registry.configure(settings).get_model_version(settings.model.name, staging)
    assert version.current_stage == "Archived"


def test_equal_variants_keep_collecting_then_keep_production(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 1500, 0.60, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.60, seed=1)  # the same outcomes
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "continue" and not evaluation.acted
    assert roles(settings) == (production, staging)
    later = datetime.now(UTC) + timedelta(days=settings.ab.max_days + 1)
    expired = evaluate(settings, engine, now=later)
    assert expired.decision == "inconclusive" and "Production stays" in expired.reason
    assert roles(settings) == (production, None)
    assert history(engine, settings.model.name)[0]["action"] == "inconclusive"


def test_too_little_feedback_keeps_collecting(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 100, 0.3, seed=1)
    send(settings, engine, STAGING, staging, 100, 0.9, seed=2)  # a huge gap, but 100 < 200
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "continue" and "200 each needed" in evaluation.reason


def test_a_failing_staging_is_rejected_by_the_guardrail(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 100, 0.6, seed=1)
    send(settings, engine, STAGING, staging, 60, 0.6, seed=2, failed=10)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "reject" and evaluation.reason.startswith("guardrail")
    assert evaluation.staging.failed_requests == 10
    assert roles(settings) == (production, None)


def test_no_guardrail_rejects_below_its_minimum_of_requests(pair):
    """Every one of Staging's first requests failing is no rejection while Staging has answered
    fewer than ``ab.guardrail_min_requests`` (50): too few to judge its error rate."""
    settings, engine, production, staging = pair
    assert settings.ab.guardrail_min_requests == 50
    send(settings, engine, PRODUCTION, production, 100, 0.6, seed=1)
    send(settings, engine, STAGING, staging, 39, 0.6, seed=2, failed=10)  # 49 requests
    evaluation = evaluate(settings, engine)
    assert evaluation.staging.failed_requests == 10 and evaluation.staging.requests == 49
    assert evaluation.decision == "continue", evaluation.reason
    assert roles(settings) == (production, staging)
    send(settings, engine, STAGING, staging, 1, 0.6, seed=3)  # the 50th request
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "reject" and evaluation.reason.startswith("guardrail")


def test_a_slow_staging_is_rejected_by_the_guardrail(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 100, 0.6, seed=1)
    send(settings, engine, STAGING, staging, 100, 0.6, seed=2, latency_ms=900)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "reject" and "p99" in evaluation.reason


def test_a_new_staging_version_starts_a_new_test(pair):
    settings, engine, _production, staging = pair
    send(settings, engine, STAGING, staging, 10, 0.6, seed=2)
    first = running_test(settings, engine)
    from tests.support.registry_home import register_versions

    (newer,) = register_versions(settings, 1)
    client = registry.configure(settings)
    role_moves.set_role(client, settings.model.name, newer, STAGING)
    send(settings, engine, STAGING, newer, 10, 0.6, seed=3)
    second = running_test(settings, engine)
    assert second.id != first.id and second.staging_version == newer
    with session_scope(engine) as session:
        assert session.get(ABTest, first.id).status == "superseded"


def test_rollback_restores_the_previous_production(pair):
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.70, seed=2)
    assert evaluate(settings, engine).decision == "promote"
    move = rollback(settings, engine, "cli:tester", "a bad surprise")
    assert (move.production_before, move.production_after) == (staging, production)
    assert roles(settings) == (production, None)
    assert [h["action"] for h in history(engine, settings.model.name)] == ["rollback", "promote"]
    with pytest.raises(registry.RegistryError, match="no earlier Production"):
        rollback(settings, engine, "cli:tester", "again")  # v1 was bootstrapped: nothing before


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=1, second=0, microsecond=0)


def test_production_decay_is_announced_once(pair):
    """Feedback of one day against the version's out-of-sample accuracy (0.80 on 500 rows):
    as good, no decay; much worse, decay, announced once."""
    settings, engine, production, _ = pair
    known_reference(settings, engine, production, 0.80)
    send(settings, engine, PRODUCTION, production, 300, 0.80, seed=1, start=_today())
    healthy = check_day(settings, engine, production, _today().date()).realized
    assert healthy.rows == 300 and not healthy.decayed, healthy.reason
    send(settings, engine, PRODUCTION, production, 600, 0.50, seed=2, start=_today())
    decayed = check_day(settings, engine, production, _today().date())
    assert decayed.realized.decayed and decayed.new_decay
    assert decayed.realized.test.reference == pytest.approx(0.80)
    event = take_decay(settings, engine)
    assert event["model_version"] == production and event["scope"] == "day"
    again = check_day(settings, engine, production, _today().date())
    assert again.realized.decayed and not again.new_decay  # announced once per decaying version
    assert take_decay(settings, engine) is None


def test_a_decision_moves_only_the_pair_it_tested(pair):
    """A version staged between the evaluation and the move is never promoted untested."""
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.70, seed=2)
    evaluation = evaluate(settings, engine, act=False)
    assert evaluation.decision == "promote"
    (newer,) = register_versions(settings, 1)
    role_moves.set_role(registry.configure(settings), settings.model.name, newer, STAGING)
    with pytest.raises(registry.RegistryError, match=r"roles of .* changed"):
        _act(settings, engine, evaluation)
    with pytest.raises(registry.RegistryError, match="nothing was moved"):
        promote(settings, engine, "cli:tester", "as shown", expected=(production, staging))
    assert roles(settings) == (production, newer) and history(engine, settings.model.name) == []


def test_unusable_regression_feedback_is_left_out_not_fatal():
    truth = pd.Series([1.5, "n/a", None, True, 2])
    assert _usable_truth(truth, "regression").tolist() == [True, False, False, False, True]
    assert _usable_truth(truth, "classification").all()


def test_forced_requests_are_left_out_of_the_decision(pair):
    """X-Variant requests are a person's checks, not randomized traffic."""
    settings, engine, production, staging = pair
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1)
    send(settings, engine, STAGING, staging, 1500, 0.95, seed=2, assignment="forced")
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "continue" and evaluation.staging.with_feedback == 0
    assert roles(settings) == (production, staging)


def test_the_records_of_one_request_are_one_observation():
    frame = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "c", "c"],
            "prediction": [1, 1, 1, 1, 2, 2],
            "truth": [1, 2, 1, 1, 1, 1],
        }
    )
    assert request_outcomes(frame, "accuracy").tolist() == [0.5, 1.0, 1 / 3]


def test_a_borderline_result_flips_between_two_close_alphas(pair):
    """600 records each, exactly 330 and 396 right: the mixture ratio from its closed form
    (per arm the larger of the pooled Bernoulli variance p(1-p)/n and the robust one around the
    pooled p, scale ab.min_effect) sits between 1/alpha for two alphas 3% apart, so a slip in
    alpha, the mixture scale or the variance changes the decision."""
    settings, engine, production, staging = pair
    start = datetime.now(UTC) - timedelta(hours=1)  # one start: every row counts in the test
    for variant, version, right in ((PRODUCTION, production, 330), (STAGING, staging, 396)):
        send(settings, engine, variant, version, right, 1.0, seed=1, start=start)
        send(settings, engine, variant, version, 600 - right, 0.0, seed=2, start=start)
    pooled = (396 + 330) / 1200
    v = sum(  # one record per request: every record its own cluster
        max(
            pooled * (1 - pooled) / 600,
            600 / 599 * (k * (1 - pooled) ** 2 + (600 - k) * pooled**2) / 600**2,
        )
        for k in (396, 330)
    )
    tau, d = settings.ab.min_effect, (396 - 330) / 600
    ratio = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
    decisions = {}
    for alpha in (1.03 / ratio, 0.97 / ratio):
        strict = settings.model_copy(update={"ab": settings.ab.model_copy(update={"alpha": alpha})})
        evaluation = evaluate(strict, engine, act=False)
        assert evaluation.sequential.likelihood_ratio == pytest.approx(ratio, rel=1e-9)
        decisions[round(alpha, 4)] = evaluation.decision
    assert list(decisions.values()) == ["promote", "continue"], decisions
    assert roles(settings) == (production, staging)  # looked at, not acted on


def test_shadow_answers_stay_out_of_the_decision(pair):
    """Staging's shadow answers are never returned to anyone: however good, they do not count."""
    settings, engine, production, staging = pair
    start = datetime.now(UTC) - timedelta(hours=1)
    send(settings, engine, PRODUCTION, production, 1500, 0.55, seed=1, start=start)
    send(settings, engine, STAGING, staging, 1500, 0.55, seed=1, start=start)  # the same outcomes
    send(settings, engine, STAGING, staging, 3000, 0.95, seed=3, start=start, shadow=True)
    evaluation = evaluate(settings, engine)
    assert evaluation.decision == "continue" and evaluation.staging.with_feedback == 1500
    assert evaluation.staging.metrics["accuracy"].value == pytest.approx(
        evaluation.production.metrics["accuracy"].value
    )
    assert roles(settings) == (production, staging)


def test_shadow_answers_stay_out_of_the_decay_check(pair):
    settings, engine, production, _ = pair
    known_reference(settings, engine, production, 0.80)
    send(settings, engine, PRODUCTION, production, 1000, 0.80, seed=1, start=_today())
    send(settings, engine, PRODUCTION, production, 1000, 0.30, seed=2, start=_today(), shadow=True)
    day = check_day(settings, engine, production, _today().date()).realized
    assert day.rows == 1000 and not day.decayed, day.reason
