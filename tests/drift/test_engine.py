from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.config import DriftSettings
from driftloop.drift import statistics
from driftloop.drift.engine import DriftError, check_drift
from driftloop.drift.profile import ReferenceProfile, build_profile
from driftloop.vocabulary import DriftStatus


def _frame(
    rng: np.random.Generator, n: int, shift: float = 0.0, colour_p=(0.5, 0.3, 0.2)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1.0, n),
            "b": rng.normal(10 + shift, 2.0, n),
            "constant": np.full(n, 3.0),
            "colour": rng.choice(["red", "white", "rose"], n, p=list(colour_p)),
            "label": rng.choice([0, 1], n),
        }
    )


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return build_profile(_frame(np.random.default_rng(3), 5000), ["colour"], "label", True)


def test_same_distribution_does_not_drift(profile, rng):
    verdict = check_drift(profile, _frame(rng, 500), DriftSettings())
    assert verdict.status == DriftStatus.NO_DRIFT and verdict.drifted_features == []
    assert not verdict.target_drift


def test_shifted_batch_drifts_with_the_shifted_features(profile, rng):
    verdict = check_drift(profile, _frame(rng, 500, shift=1.5), DriftSettings(drift_share=0.5))
    assert verdict.status == DriftStatus.DRIFT
    assert set(verdict.drifted_features) == {"a", "b"}
    a = next(f for f in verdict.features if f.name == "a")
    assert a.measurements["mean_shift"].value > 1.2 and a.flags["mean_shift"]
    assert a.measurements["wasserstein"].details["distance"] > 1.2


def test_constant_column_drifts_only_when_it_moves(profile, rng):
    batch = _frame(rng, 500)
    same = next(
        f for f in check_drift(profile, batch, DriftSettings()).features if f.name == "constant"
    )
    assert not same.drifted and same.measurements["mean_shift"].value == 0.0
    batch["constant"] = 3.5
    moved = next(
        f for f in check_drift(profile, batch, DriftSettings()).features if f.name == "constant"
    )
    assert moved.drifted and moved.measurements["wasserstein"].value == np.inf


def test_unseen_category_counts_as_its_own_bin(profile, rng):
    batch = _frame(rng, 500)
    batch.loc[:300, "colour"] = "orange"
    colour = next(
        f for f in check_drift(profile, batch, DriftSettings()).features if f.name == "colour"
    )
    assert colour.kind == "categorical" and colour.drifted
    assert colour.current_probabilities[-1] == pytest.approx(301 / 500)
    assert set(colour.measurements) == {"jensen_shannon"}  # mean shift and Wasserstein do not apply


def test_missing_values_are_ignored_and_reported(profile, rng):
    batch = _frame(rng, 500)
    batch.loc[:199, "a"] = np.nan
    verdict = check_drift(profile, batch, DriftSettings())
    a = next(f for f in verdict.features if f.name == "a")
    assert a.count == 300 and a.missing_share == pytest.approx(0.4)
    assert verdict.missing_alerts == ["a"]
    assert not a.drifted  # the remaining values are from the reference distribution


def test_tiny_batch_is_insufficient_data_never_an_alarm(profile, rng):
    verdict = check_drift(profile, _frame(rng, 10, shift=5.0), DriftSettings(min_rows=30))
    assert verdict.status == DriftStatus.INSUFFICIENT_DATA
    assert verdict.drifted_features == [] and not verdict.target_drift


def test_empty_or_incomplete_batch_raises_a_clear_error(profile, rng):
    with pytest.raises(DriftError, match="empty"):
        check_drift(profile, _frame(rng, 0), DriftSettings())
    with pytest.raises(DriftError, match=r"lacks profiled column\(s\) \['b'\]"):
        check_drift(profile, _frame(rng, 100).drop(columns=["b"]), DriftSettings())


def test_target_drift_is_reported_apart(profile, rng):
    batch = _frame(rng, 500)
    batch["label"] = 1
    verdict = check_drift(profile, batch, DriftSettings())
    assert verdict.target_drift and verdict.status == DriftStatus.NO_DRIFT
    assert "label" not in verdict.drifted_features


def test_feature_rule_all_needs_every_statistic(profile, rng):
    batch = _frame(rng, 500)
    batch["a"] = batch["a"] * 1.6  # same mean, wider spread: Wasserstein moves, mean shift does not
    any_rule = check_drift(profile, batch, DriftSettings(thresholds={"wasserstein": 0.1}))
    all_rule = check_drift(
        profile, batch, DriftSettings(thresholds={"wasserstein": 0.1}, feature_rule="all")
    )
    assert "a" in any_rule.drifted_features and "a" not in all_rule.drifted_features


def test_a_new_statistic_is_one_function_and_one_registration(profile, rng):
    from scipy.stats import ks_2samp

    def ks(column, current):
        return statistics.Measurement(float(ks_2samp(column.values, current).statistic))

    statistics.register(
        statistics.Statistic("ks", ks, 0.1, frozenset({statistics.NUMERIC}), "KS statistic")
    )
    try:
        verdict = check_drift(
            profile, _frame(rng, 500, shift=1.0), DriftSettings(statistics=["ks"])
        )
        assert "ks" in verdict.features[0].measurements and "a" in verdict.drifted_features
    finally:
        del statistics.STATISTICS["ks"]


def test_unknown_statistic_is_a_config_error():
    with pytest.raises(ValueError, match="unknown statistic"):
        DriftSettings(statistics=["psi"])


def test_profile_round_trips_through_its_file(profile, tmp_path, rng):
    path = tmp_path / "profile.npz"
    digest = profile.save(path)
    loaded = ReferenceProfile.load(path)
    assert len(digest) == 64 and loaded.features == profile.features and loaded.target == "label"
    batch = _frame(rng, 500, shift=1.0)
    assert (
        check_drift(loaded, batch, DriftSettings()).to_dict()
        == check_drift(profile, batch, DriftSettings()).to_dict()
    )


def test_number_coded_categories_are_labelled_value_by_value(profile, rng):
    batch = _frame(rng, 500)
    batch["label"] = batch["label"].astype(float)
    batch.loc[0, "label"] = 2.5  # one odd value must not turn every 1 into "1.0"
    target = check_drift(profile, batch, DriftSettings()).target
    assert not target.drifted
    assert target.current_probabilities[-1] == pytest.approx(1 / 500)


def test_infinities_count_as_missing_not_as_values(profile, rng):
    batch = _frame(rng, 500)
    batch.loc[:1, "a"] = np.inf
    a = next(f for f in check_drift(profile, batch, DriftSettings()).features if f.name == "a")
    assert a.count == 498 and np.isfinite(a.measurements["wasserstein"].value)
