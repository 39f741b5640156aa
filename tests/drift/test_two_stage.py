"""Check-time permutations in two stages: the draws the batch verdict's bar needs (every
detector allowed to call drift: 3,999) are drawn only for a statistic the first
``calibration_draws`` could not place, so a clean column costs what it did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.config import DriftSettings
from driftloop.drift import categorical, permutation
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.drift.statistics import jensen_shannon_rows

EVERY = DriftSettings(multivariate_retrain=True, segment_by=["region"], segment_retrain=True)


def _check(reference: pd.DataFrame, batch: pd.DataFrame, categorical_columns: list[str]):
    profile = build_profile(
        reference,
        categorical_columns,
        None,
        False,
        statistics=EVERY.statistics,
        calibration_draws=EVERY.draws,
    )
    return check_drift(profile, batch, EVERY)


def test_a_shifted_heavy_tail_reaches_the_second_stage_and_a_clean_one_stays_in_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[int] = []
    split_nulls = permutation.split_nulls

    def counted(names, pooled, n, reference_count, draws):
        drawn.append(draws)
        return split_nulls(names, pooled, n, reference_count, draws)

    monkeypatch.setattr(permutation, "split_nulls", counted)
    rng = np.random.default_rng(51)
    reference = pd.DataFrame({"x": rng.lognormal(0.0, 2.0, 5_000)})
    clean = _check(reference, pd.DataFrame({"x": rng.lognormal(0.0, 2.0, 1_000)}), [])
    assert drawn == [EVERY.calibration_draws]
    assert clean.features[0].tests["wasserstein"].p_value > 1 / (EVERY.calibration_draws + 1)
    drawn.clear()
    shifted = _check(reference, pd.DataFrame({"x": rng.lognormal(1.0, 2.0, 1_000)}), [])
    assert drawn == [EVERY.calibration_draws, EVERY.draws]
    test = shifted.features[0].tests["wasserstein"]
    assert test.p_value == pytest.approx(1 / (EVERY.draws + 1))  # finer than 1 / 1,001


def test_a_categorical_shift_reaches_the_second_stage() -> None:
    rng = np.random.default_rng(52)
    levels = np.array(list("abcde"), dtype=object)
    reference = pd.DataFrame({"c": rng.choice(levels, 5_000, p=[0.4, 0.25, 0.15, 0.12, 0.08])})
    batch = pd.DataFrame({"c": rng.choice(levels, 1_000, p=[0.2, 0.2, 0.2, 0.2, 0.2])})
    test = _check(reference, batch, ["c"]).features[0].tests["jensen_shannon"]
    assert test.measurement.details["js_p_value"] == pytest.approx(1 / (EVERY.draws + 1))


def test_the_two_stages_keep_the_level_where_the_first_alone_is_coarse() -> None:
    """Clean splits of one pool, the observed one drawn as a split too: the share of two-stage
    p-values at or under t is at most t, at t below the first stage's resolution as well."""
    rng = np.random.default_rng(53)
    pooled = np.bincount(rng.integers(0, 6, 600), minlength=6).astype(np.int64)
    small, draws, more, batches = 100, 20, 400, 4_000
    p_values = []
    for _ in range(batches):
        side = rng.multivariate_hypergeometric(pooled, small)
        observed = float(jensen_shannon_rows((pooled - side)[None, :], side[None, :])[0])
        result = categorical.permutation_test(
            pooled - side, side, observed, draws, 0.01, jensen_shannon_rows, more
        )
        p_values.append(result.js_p_value)
    p_values = np.asarray(p_values)
    for t in (1 / 401, 5 / 401, 1 / 21, 0.2):
        share = float(np.mean(p_values <= t * (1 + 1e-9)))
        assert share <= t + 3 * np.sqrt(t * (1 - t) / batches), (t, share)
    assert np.mean(p_values < 1 / 21) > 0  # the second stage is reached


def test_the_second_stage_only_where_the_first_gives_its_least_p_value() -> None:
    from driftloop.drift.calibration import second_stage

    assert second_stage(1 / 1000, 999, 3999)  # no split of the first 999 reached the batch
    assert not second_stage(2 / 1000, 999, 3999)  # one did: the first stage's p-value stands
    assert not second_stage(1 / 1000, 999, 999)  # no second stage configured
    assert not second_stage(1 / 4000, 3999, 999)
