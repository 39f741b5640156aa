"""Calibrated drift thresholds: the statistical properties issue 12 asks for, at small scale.

The full-scale figures (1,000 batches per cell, Evidently beside) come from
``benchmarks/drift_calibration.py``; these tests hold the same properties with fixed seeds and
fewer batches, with bounds that leave room for that smaller sample (a feature-level rate of 1%
over ~3,000 feature tests has a standard error of about 0.2 points).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftloop.config import DriftSettings
from driftloop.drift import permutation
from driftloop.drift.calibration import INFINITE, scale, wasserstein_null
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.vocabulary import DriftStatus

SETTINGS = DriftSettings()
CATEGORICAL = ["colour", "city"]


def _population(rng: np.random.Generator, rows: int, shift: dict[str, float] | None = None):
    """Columns of the shapes that break fixed thresholds: normal, heavy tails, ties, levels."""
    shift = shift or {}
    frame = pd.DataFrame(
        {
            "normal": rng.normal(shift.get("normal", 0.0), shift.get("normal_sd", 1.0), rows),
            "lognormal": rng.lognormal(0.0, shift.get("lognormal_sigma", 0.5), rows),
            "counts": rng.poisson(shift.get("counts", 2.0), rows).astype(float),
            "binary": rng.binomial(1, 0.3, rows).astype(float),
            "colour": rng.choice(list("abcde"), rows, p=[0.4, 0.25, 0.15, 0.12, 0.08]),
            "city": rng.choice([f"c{i}" for i in range(30)], rows, p=_zipf(30)),
        }
    )
    holes = rng.random(frame.shape) < 0.01  # about 1% missing everywhere
    return frame.mask(holes)


def _zipf(levels: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1)
    return weights / weights.sum()


def _profile(frame: pd.DataFrame, settings: DriftSettings = SETTINGS):
    return build_profile(
        frame,
        CATEGORICAL,
        target=None,
        target_is_categorical=False,
        statistics=settings.statistics,
        calibration_draws=settings.draws,
    )


def test_the_resampled_wasserstein_is_scipys():
    rng = np.random.default_rng(3)
    for values in (np.sort(rng.lognormal(size=400)), np.sort(rng.poisson(2, 300).astype(float))):
        index = np.sort(rng.integers(0, values.size, (8, 41)), axis=1)
        expected = [stats.wasserstein_distance(values[row], values) for row in index]
        assert np.allclose(wasserstein_null(values, 1.0, index), expected, rtol=0, atol=1e-12)


def test_the_statistics_of_values_share_their_splits_and_keep_their_nulls():
    """Both statistics drawn from one set of splits get the nulls each gets alone (the same
    seed, the same splits), on a continuous pool and on a flag's pool (split from counts)."""
    rng = np.random.default_rng(5)
    names = ["mean_shift", "wasserstein"]
    for pooled in (np.sort(rng.lognormal(0, 2, 3_000)), np.sort(rng.binomial(1, 0.02, 3_000))):
        pooled = pooled.astype(float)
        together = permutation.split_nulls(names, pooled, 1_000, 2_000, 600)
        for name in names:
            alone = permutation.split_nulls([name], pooled, 1_000, 2_000, 600)[name]
            assert together[name].shape == (600,)
            assert np.array_equal(together[name], alone)
        assert not np.array_equal(together["mean_shift"], together["wasserstein"])


GENERATORS = {
    "lognormal": lambda rng, size: rng.lognormal(0.0, 0.5, size),
    "counts": lambda rng, size: rng.poisson(2.0, size).astype(float),
}


@pytest.mark.parametrize("n", [30, 250, 1000])
def test_thresholds_match_two_sample_resampling_from_the_population(n):
    """The calibrated critical value (drawn from one reference of 1,500 alone) against the
    truth: batch and reference both drawn afresh from the generating distribution."""
    rng = np.random.default_rng(n)
    level, size = 0.01, 1500
    for name, draw in GENERATORS.items():
        reference = pd.DataFrame({name: draw(rng, size)})
        profile = build_profile(
            reference, [], None, False, statistics=SETTINGS.statistics, calibration_draws=2000
        )
        nulls = profile.columns[name].nulls
        mean_shift, wasserstein = [], []
        for _ in range(2000):
            batch, fresh = draw(rng, n), draw(rng, size)
            spread = fresh.std(ddof=1)
            mean_shift.append(abs(batch.mean() - fresh.mean()) / spread)
            if name == "lognormal":
                wasserstein.append(stats.wasserstein_distance(batch, fresh) / spread)
        noise = scale(n, size)
        expected = np.quantile(mean_shift, 1 - level)
        assert nulls["mean_shift"].critical(level, n) * noise == pytest.approx(expected, rel=0.15)
        if wasserstein:
            expected = np.quantile(wasserstein, 1 - level)
            ours = nulls["wasserstein"].critical(level, n) * noise
            assert ours == pytest.approx(expected, rel=0.15)


def test_no_false_alarms_on_clean_batches_at_any_size():
    """Many references, batches of 30 to 1,000 values: features flagged at about the rate."""
    rng = np.random.default_rng(12)
    flagged = {30: [], 100: [], 1000: []}
    drifted = dict.fromkeys(flagged, 0)
    for _ in range(12):
        profile = _profile(_population(rng, 1500))
        for n in flagged:
            for _ in range(25):
                verdict = check_drift(profile, _population(rng, n), SETTINGS)
                assert verdict.status != DriftStatus.INSUFFICIENT_DATA
                flagged[n].append(len(verdict.drifted_features) / len(verdict.tested_features))
                drifted[n] += verdict.drifted
    for n, shares in flagged.items():
        assert np.mean(shares) <= 0.02, (n, np.mean(shares))  # 0.01 configured
        assert drifted[n] / len(shares) <= 0.02, n


@pytest.mark.parametrize(
    ("feature", "shift"),
    [
        ("normal", {"normal": 0.25}),
        ("normal", {"normal_sd": 1.2}),
        ("lognormal", {"lognormal_sigma": 0.6}),
        ("counts", {"counts": 2.35}),
    ],
)
def test_moderate_shifts_are_caught_at_5000_rows(feature, shift):
    rng = np.random.default_rng(5)
    profile = _profile(_population(rng, 5000))
    caught = [
        feature in check_drift(profile, _population(rng, 5000, shift), SETTINGS).drifted_features
        for _ in range(20)
    ]
    assert sum(caught) >= 19


def _levels_at_distance(p: np.ndarray, distance: float) -> np.ndarray:
    """Level probabilities at the given Jensen-Shannon distance (base 2) from ``p``."""
    from scipy.optimize import brentq
    from scipy.spatial.distance import jensenshannon

    direction = np.linspace(1.0, -1.0, p.size)

    def moved(t: float) -> np.ndarray:
        q = p * np.exp(t * direction)
        return q / q.sum()

    t = brentq(lambda t: jensenshannon(p, moved(t), base=2) - distance, 0.0, 10.0)
    return moved(t)


@pytest.mark.parametrize("levels", [5, 50])
def test_categorical_level_changes_are_caught_at_5000_rows(levels):
    rng = np.random.default_rng(levels)
    p = _zipf(levels)
    q = _levels_at_distance(p, 0.1)
    names = [f"l{i}" for i in range(levels)]
    reference = pd.DataFrame({"level": rng.choice(names, 5000, p=p)})
    profile = build_profile(
        reference,
        ["level"],
        None,
        False,
        statistics=["jensen_shannon"],
        calibration_draws=SETTINGS.draws,
    )
    settings = DriftSettings(statistics=["jensen_shannon"])
    caught = [
        check_drift(
            profile, pd.DataFrame({"level": rng.choice(names, 5000, p=q)}), settings
        ).drifted
        for _ in range(20)
    ]
    assert sum(caught) >= 19


def test_a_half_sd_shift_is_caught_at_250_rows_and_the_batch_called_drift():
    rng = np.random.default_rng(250)
    profile = _profile(_population(rng, 5000))
    shifted = {"normal": 0.5, "counts": 2.0 + 0.5 * np.sqrt(2.0)}  # 2 of 6 features: 33%
    verdicts = [check_drift(profile, _population(rng, 250, shifted), SETTINGS) for _ in range(20)]
    assert sum("normal" in v.drifted_features for v in verdicts) >= 19
    assert sum(v.drifted for v in verdicts) >= 19


def test_a_trivial_shift_in_a_huge_batch_is_left_to_the_floor():
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.normal(size=200_000)})
    profile = build_profile(
        reference,
        [],
        None,
        False,
        statistics=SETTINGS.statistics,
        calibration_draws=SETTINGS.draws,
    )
    batch = pd.DataFrame({"x": rng.normal(0.05, 1.0, 1_000_000)})
    verdict = check_drift(profile, batch, SETTINGS)
    mean_shift = verdict.features[0].tests["mean_shift"]
    assert mean_shift.p_value < 1e-3  # significant: the sample size alone would flag it
    assert mean_shift.decided_by == "floor" and not mean_shift.flag
    assert not verdict.drifted


def test_missing_values_leave_out_a_feature_not_the_batch():
    """31 features with 1% missing: no row is complete, yet every feature is tested."""
    rng = np.random.default_rng(31)
    columns = {f"f{i}": rng.normal(size=3000) for i in range(31)}
    frame = pd.DataFrame(columns).mask(rng.random((3000, 31)) < 0.01)
    profile = build_profile(
        frame,
        [],
        None,
        False,
        statistics=SETTINGS.statistics,
        calibration_draws=SETTINGS.draws,
    )
    batch = pd.DataFrame({f"f{i}": rng.normal(size=30) for i in range(31)})
    batch.iloc[:, :20] = batch.iloc[:, :20].mask(rng.random((30, 20)) < 0.05)
    batch["f30"] = np.nan  # one feature entirely missing: not tested, not counted
    verdict = check_drift(profile, batch, SETTINGS)
    assert verdict.status != DriftStatus.INSUFFICIENT_DATA
    assert "f30" not in verdict.tested_features
    assert len(verdict.tested_features) >= 10  # the complete ones, at least
    nothing = check_drift(profile, batch.iloc[:5], SETTINGS)
    assert nothing.status == DriftStatus.INSUFFICIENT_DATA and nothing.drift_share == 0.0


def test_the_limit_closes_every_ladder_and_thresholds_shrink_with_size():
    rng = np.random.default_rng(1)
    profile = _profile(_population(rng, 3000))
    for column in profile.columns.values():
        for name, null in column.nulls.items():
            assert null.sizes[-1] == INFINITE, (column.name, name)
            thresholds = [null.critical(0.01, n) * scale(n, column.count) for n in (30, 300, 3000)]
            assert thresholds == sorted(thresholds, reverse=True), (column.name, name)


def test_fixed_thresholds_warn_at_load(caplog):
    with caplog.at_level(logging.WARNING, logger="driftloop.config"):
        settings = DriftSettings(thresholds={"mean_shift": 0.5})
    assert settings.fixed and "fixed mode" in caplog.text


def test_too_few_draws_for_the_rate_is_a_config_error():
    # one batch in a thousand, shared by three statistics, when every feature must drift:
    # 3,000 draws, of which one would be in the tail
    with pytest.raises(ValueError, match="calibration_draws"):
        DriftSettings(false_alarm_rate=0.001, calibration_draws=300, drift_share=1.0)
