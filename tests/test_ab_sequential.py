"""The sequential test: its algebra, its error rate when looked at every step, and its power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftloop.ab.sequential import mixture_sprt, two_sample
from driftloop.ab.simulation import simulate_aa


def test_no_difference_is_never_significant_and_the_interval_covers_it():
    result = mixture_sprt(0.0, 1e-4, tau=0.02, alpha=0.05)
    assert result.likelihood_ratio < 1 and result.p_value == 1.0 and not result.significant
    assert result.ci_low < 0 < result.ci_high


def test_the_boundary_and_the_interval_agree():
    """Lambda >= 1/alpha exactly when the always-valid interval excludes zero."""
    for difference in np.linspace(-0.1, 0.1, 41):
        result = mixture_sprt(float(difference), 4e-4, tau=0.02, alpha=0.05)
        excludes_zero = result.ci_low > 0 or result.ci_high < 0
        assert result.significant == excludes_zero, difference


def test_the_ratio_matches_the_closed_form():
    v, tau, d = 2.5e-4, 0.03, 0.04
    expected = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
    assert mixture_sprt(d, v, tau, 0.05).likelihood_ratio == pytest.approx(expected, rel=1e-12)


def test_the_sign_follows_the_metric_direction():
    production = np.array([1.0, 2.0, 3.0, 2.0] * 50)  # absolute errors
    staging = production / 2  # half the error: better
    assert two_sample(production, staging, 0.1, 0.05, higher_is_better=False).difference > 0
    assert two_sample(production, staging, 0.1, 0.05, higher_is_better=True).difference < 0


def test_a_perfect_run_does_not_claim_zero_variance():
    result = two_sample(np.ones(300), np.ones(300), 0.02, 0.05, higher_is_better=True)
    assert result.variance > 0 and not result.significant


@pytest.mark.parametrize("staging_share", [0.5, 0.1])
def test_aa_false_promotions_stay_within_alpha_when_checked_at_every_step(staging_share):
    """The issue's check: at least 500 A/A tests, looked at every 10 records."""
    result = simulate_aa(tests=1000, records=5000, staging_share=staging_share, seed=7)
    print(
        f"A/A, staging share {staging_share}: false promotion rate "
        f"{result.false_promotion_rate:.3f} over {result.tests} tests x {result.looks_per_test} looks"
    )
    assert result.tests >= 500 and result.looks_per_test >= 100
    assert result.false_promotion_rate <= 0.05 + 0.02


def test_a_naive_fixed_sample_test_looked_at_every_step_would_not():
    """Why the sequential test: a z-test at 1.96 checked every step promotes far more often."""
    rng = np.random.default_rng(1)
    to_staging = rng.random((500, 5000)) < 0.5
    correct = rng.random((500, 5000)) < 0.55
    looks = np.arange(400, 5000, 10)
    n_s = np.cumsum(to_staging, axis=1)[:, looks]
    n_p = np.cumsum(~to_staging, axis=1)[:, looks]
    p_s = np.cumsum(to_staging & correct, axis=1)[:, looks] / n_s
    p_p = np.cumsum(~to_staging & correct, axis=1)[:, looks] / n_p
    z = (p_s - p_p) / np.sqrt(p_s * (1 - p_s) / n_s + p_p * (1 - p_p) / n_p)
    naive_rate = float((z > 1.96).any(axis=1).mean())
    assert naive_rate > 0.07  # peeking inflates a 2.5% one-sided error several times over


def test_a_real_improvement_is_found():
    rng = np.random.default_rng(3)
    production = (rng.random(3000) < 0.55).astype(float)
    staging = (rng.random(3000) < 0.65).astype(float)
    result = two_sample(production, staging, 0.02, 0.05, higher_is_better=True)
    assert result.significant and result.difference > 0
    assert result.ci_low < 0.10 < result.ci_high
