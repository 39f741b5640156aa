"""The loop gauges read what the loop stored: drift, retrain, A/B and Production's performance."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.ingestion.stream import replay
from driftloop.reports.drift import write_report
from driftloop.schema import upgrade
from driftloop.stages.ab_evaluation import evaluate
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing, list_batches
from driftloop.stages.performance_check import check_day
from driftloop.storage import Feedback, Prediction, make_engine
from driftloop.ui.gauges import _report_numbers, loop_gauges
from tests.support.ab_traffic import send
from tests.support.performance import known_reference
from tests.support.registry_home import production_and_staging


def _values(gauges) -> dict[str, dict[tuple[str, ...], float]]:
    return {g.name: dict(g.samples) for g in gauges}


def test_an_empty_loop_exports_zeros_not_errors(settings):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    values = _values(loop_gauges(engine, settings.model.name))
    assert values["driftloop_drift_checks"][("drift",)] == 0.0
    assert values["driftloop_ab_metric"] == {} and values["driftloop_drift_share"] == {}


def test_ab_and_performance_numbers_are_exported(settings):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production, staging = production_and_staging(settings)
    start = datetime.now(UTC) - timedelta(hours=1)  # one start: the test counts from Staging's
    send(settings, engine, registry.PRODUCTION, production, 1500, 0.55, seed=1, start=start)
    send(settings, engine, registry.STAGING, staging, 1500, 0.70, seed=2, start=start)
    evaluation = evaluate(settings, engine, act=False)
    known_reference(settings, engine, production, 0.80)
    check_day(settings, engine, production, start.date())
    values = _values(loop_gauges(engine, settings.model.name))
    metric = values["driftloop_ab_metric"]
    assert metric[("staging", "accuracy")] == evaluation.staging.metrics["accuracy"].value
    # and the values counted here from the stored rows, not by the code under test
    assert metric[("staging", "accuracy")] == pytest.approx(_accuracy(engine, "staging"))
    assert metric[("production", "accuracy")] == pytest.approx(_accuracy(engine, "production"))
    assert values["driftloop_ab_samples"][("production",)] == 1500.0
    assert values["driftloop_ab_running"][()] == 1.0
    online = values["driftloop_performance_realized"][("day", production, "accuracy")]
    assert online == pytest.approx(_accuracy(engine, "production"))
    assert 0.5 < online < 0.6
    assert values["driftloop_performance_reference"][(production, "accuracy")] == 0.8
    assert values["driftloop_performance_decayed"][("day",)] == 1.0  # 0.55 against 0.80
    low = values["driftloop_performance_realized_low"][("day", production, "accuracy")]
    assert 0.0 <= low < online


def _accuracy(engine, variant: str, last: int | None = None) -> float:
    """Share of a variant's answered records whose prediction equals its feedback."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Prediction.output, Feedback.value)
            .join(Feedback, Feedback.record_id == Prediction.record_id)
            .where(Prediction.variant == variant, Prediction.status == 200)
            .order_by(Prediction.created_at, Prediction.id)
        ).all()
    rows = rows[-last:] if last else rows
    return sum(output["prediction"] == truth for output, truth in rows) / len(rows)


def test_the_latest_drift_check_is_exported_feature_by_feature(settings, engine):
    replay(settings, "gradual", n_batches=9, start_batch=2, strength=0.9)
    ingest_landing(settings, engine)
    last = list_batches(engine)[-1]
    outcome = check_next_batch(settings, engine, last.id)
    assert outcome.status == "drift"
    values = _values(loop_gauges(engine, settings.model.name))
    assert values["driftloop_drift_detected"][()] == 1.0
    assert values["driftloop_drift_checks"][("drift",)] == 1.0
    report = json.loads(Path(outcome.html_path).with_suffix(".json").read_text())
    assert values["driftloop_drift_share"][()] == report["drift_share"]
    stored = {
        (feature["name"], statistic): measured["value"]
        for feature in report["features"]
        for statistic, measured in feature["statistics"].items()
        if measured["value"] is not None
    }
    assert stored and values["driftloop_drift_feature_score"] == stored
    # the p-values and the batch test over features (report format 3) are exported too
    assert values["driftloop_drift_feature_p_value"] == {
        (feature["name"], statistic): measured["p_value"]
        for feature in report["features"]
        for statistic, measured in feature["statistics"].items()
    }
    test = report["batch_test"]
    assert values["driftloop_drift_batch_test"] == {
        ("p_value",): test["p_value"],
        ("bar",): test["bar"],
        ("needed",): test["needed"],
    }
    assert test["p_value"] <= test["bar"]  # the batch drifted: its test passed
    # scrapes parse the report once, and again when the file is rewritten
    report["features"][0]["statistics"]["mean_shift"]["value"] = 42.0
    json_path = Path(outcome.html_path).with_suffix(".json")
    json_path.write_text(json.dumps(report))
    os.utime(json_path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    again = _values(loop_gauges(engine, settings.model.name))["driftloop_drift_feature_score"]
    assert again[(report["features"][0]["name"], "mean_shift")] == 42.0


def test_a_categorical_features_unseen_levels_are_exported(tmp_path):
    """The categorical test's own numbers: the share on levels the reference never saw and the
    p-value of the largest new level, read from the stored report."""
    rng = np.random.default_rng(5)
    levels = np.array(["a", "b", "c", "d"], dtype=object)
    reference = pd.DataFrame({"city": rng.choice(levels, 2_000), "x": rng.normal(size=2_000)})
    batch = pd.DataFrame(
        {"city": np.r_[rng.choice(levels, 900), ["new"] * 100], "x": rng.normal(size=1_000)}
    )
    profile = build_profile(reference, ["city"], None, False)
    verdict = check_drift(profile, batch, DriftSettings())
    json_path, _html = write_report(verdict, profile, tmp_path, "drift-1", {})
    numbers = _report_numbers(str(json_path))
    assert dict(numbers.unseen) == {("city",): pytest.approx(0.1)}
    (p_value,) = dict(numbers.new_level).values()
    assert p_value <= DriftSettings().false_alarm_rate  # 100 rows of a new level: flagged
    assert ("x",) not in dict(numbers.unseen)  # numeric features have no levels
    assert {part for (part,), _ in numbers.batch} == {"p_value", "bar", "needed"}
