"""Importance-weighted batch verdicts (issue 31, item 3): a shift of the features that carry
the model's importance starts a retrain, whatever their number, and clean batches stay within
``drift.false_alarm_rate`` for any weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from driftloop.cli.drift import describe_report
from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.vocabulary import DriftStatus


def _profile(rng: np.random.Generator, features: int, settings: DriftSettings):
    reference = pd.DataFrame(rng.normal(size=(5_000, features))).add_prefix("f")
    return build_profile(
        reference,
        [],
        None,
        False,
        statistics=settings.statistics,
        calibration_draws=settings.draws,
    )


def test_the_important_feature_alone_starts_a_retrain() -> None:
    """One of ten features shifts 1 sd: 10% of the features, 40% of the importance."""
    rng = np.random.default_rng(31)
    importances = {"f0": 0.4, **{f"f{i}": 0.6 / 9 for i in range(1, 10)}}
    counted, weighted = DriftSettings(), DriftSettings(weighting="importance")
    profile = _profile(rng, 10, counted)
    batch = pd.DataFrame(rng.normal(size=(1_000, 10))).add_prefix("f")
    batch["f0"] += 1.0
    by_count = check_drift(profile, batch, counted, importances)
    by_weight = check_drift(profile, batch, weighted, importances)
    assert by_count.status == DriftStatus.NO_DRIFT and by_count.weighting == "count"
    assert by_weight.status == DriftStatus.DRIFT and by_weight.weighting == "importance"
    assert by_weight.importance_share == pytest.approx(0.4)
    # an unimportant feature's shift does not, however strong
    other = pd.DataFrame(rng.normal(size=(1_000, 10))).add_prefix("f")
    other["f5"] += 3.0
    assert check_drift(profile, other, weighted, importances).status == DriftStatus.NO_DRIFT
    # without importances the count rule applies, and says so
    assert check_drift(profile, batch, weighted, None).weighting == "count"
    assert check_drift(profile, batch, weighted, {"x": 1.0}).weighting == "count"
    lines = describe_report({**by_weight.to_dict(), "batch": "b"})
    assert any("carry 40% of the Production version's mean |SHAP|" in line for line in lines)


def test_clean_batches_stay_within_the_rate_for_any_weights() -> None:
    """At false_alarm_rate 0.1 (so that 400 batches can show a breach) and weights piled on
    one feature (0.5, alone enough to call drift) or spread, clean batches are called drift no
    more often than a binomial at 0.1 allows."""
    rng = np.random.default_rng(32)
    settings = DriftSettings(weighting="importance", false_alarm_rate=0.1)
    for importances in ({"f0": 0.5, "f1": 0.2, "f2": 0.1, "f3": 0.1, "f4": 0.1}, None):
        weights = importances or {f"f{i}": 1.0 for i in range(5)}
        called = 0
        for _ in range(4):
            profile = _profile(rng, 5, settings)
            for _ in range(100):
                batch = pd.DataFrame(rng.normal(size=(300, 5))).add_prefix("f")
                called += check_drift(profile, batch, settings, weights).drifted
        assert called <= binom.ppf(0.999, 400, 0.1)
