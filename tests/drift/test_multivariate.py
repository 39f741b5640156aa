"""The features tested together (issue 31, item 1): PCA reconstruction error against held-out
reference rows, calibrated at every batch size, blind to nothing the marginals hide."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from driftloop.cli.drift import describe_report
from driftloop.config import DriftSettings
from driftloop.drift import multivariate, tails
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import ReferenceProfile, build_profile
from driftloop.reports.drift import render_html
from driftloop.ui.gauges import _numbers_in_report
from driftloop.vocabulary import DriftStatus

NUMERIC = [f"f{i}" for i in range(10)]


def frame(rng: np.random.Generator, rows: int, rho: float = 0.8, missing: float = 0.1):
    """Ten standard normals, f0 and f1 correlated ``rho``; a categorical tied to f2; f3 with
    missing values."""
    covariance = np.eye(10)
    covariance[0, 1] = covariance[1, 0] = rho
    values = rng.multivariate_normal(np.zeros(10), covariance, rows)
    data = pd.DataFrame(values, columns=NUMERIC)
    data["kind"] = np.where(
        values[:, 2] + rng.normal(size=rows) > 0, "a", rng.choice(["b", "c", "d"], rows)
    )
    data.loc[rng.random(rows) < missing, "f3"] = np.nan
    return data


def profile_of(reference: pd.DataFrame) -> ReferenceProfile:
    settings = DriftSettings()
    return build_profile(
        reference,
        ["kind"],
        None,
        False,
        statistics=settings.statistics,
        calibration_draws=200,
        multivariate=True,
    )


@pytest.mark.parametrize("rows", [100, 1_000])
def test_clean_batches_are_flagged_at_most_at_the_level(rows: int) -> None:
    """Given the fitted PCA the batch's and the held-out rows' errors are draws of one law: at
    level 0.05 (ten times the default, so the count has something to show) and floor 0, 300
    clean batches across 6 references flag no more than a binomial at 0.05 allows."""
    rng = np.random.default_rng([31, rows])
    flagged = 0
    for seed in range(6):
        model = multivariate.fit(frame(rng, 5_000), NUMERIC, ["kind"], seed=seed)
        assert model is not None
        for _ in range(50):
            flagged += multivariate.assess(model, frame(rng, rows), 0.05, 0.0).flag
    assert flagged <= binom.ppf(0.999, 300, 0.05)  # 27: a rate near 0.05, not above it
    assert flagged >= 3  # and the test is not dead at that level either


def test_the_tail_test_holds_its_level_at_every_batch_size() -> None:
    """The count of rows past the held-out errors' top 1% is beta-binomial under no drift,
    over the held-out sample's luck too: so each of 300 clean batches (100 to 10,000 rows)
    gets a reference of its own. At level 0.05 the count stays within a binomial at 0.05."""
    rng = np.random.default_rng(31)
    flagged = 0
    for seed, rows in enumerate([100, 1_000, 10_000] * 100):
        model = multivariate.fit(frame(rng, 2_000), NUMERIC, ["kind"], seed=seed)
        assert model is not None
        errors = multivariate._row_errors(model.residuals(frame(rng, rows)))
        flagged += tails.tail_test(errors, model.held_out_errors).p_value <= 0.05
    assert flagged <= binom.ppf(0.999, 300, 0.05)  # 28: a rate near 0.05, not above it
    assert flagged >= 3  # and the test is not dead at that level either


def test_each_feature_tail_and_their_family_hold_the_level() -> None:
    """Both tails of every numeric feature are exact beta-binomial tests too, f3's missing
    values (imputed) and f1's correlation with f0 included: over 300 clean batches with a
    reference each, one feature's high tail at 0.05 and the whole tail family at 0.05 under
    Bonferroni stay within a binomial at 0.05."""
    rng = np.random.default_rng(41)
    one = family = 0
    for seed, rows in enumerate([100, 1_000, 10_000] * 100):
        model = multivariate.fit(frame(rng, 2_000), NUMERIC, ["kind"], seed=seed)
        assert model is not None and model.feature_bars.shape == (2, len(NUMERIC))
        batch = frame(rng, rows)
        standardized = model.standardized(batch)
        errors = multivariate._row_errors(model.residuals(batch, standardized))
        tested = multivariate._tail_tests(model, standardized, errors)
        assert len(tested) == 1 + 2 * len(NUMERIC)
        one += next(t for t in tested if t.feature == "f3" and t.side == "high").p_value <= 0.05
        family += min(t.p_value for t in tested) * len(tested) <= 0.05
    assert one <= binom.ppf(0.999, 300, 0.05)
    assert family <= binom.ppf(0.999, 300, 0.05)


def test_a_feature_the_components_rebuild_is_still_caught_in_its_own_tail() -> None:
    """Where PCA keeps a feature's own axis (x2 independent of a correlated pair, so the kept
    components are the pair's sum and x2), a client sending x2 doubled rebuilds perfectly: the
    row errors' tail sees nothing, x2's high tail sees it, and the window is flagged."""
    rng = np.random.default_rng(43)

    def rows(n: int) -> pd.DataFrame:
        pair = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], n)
        return pd.DataFrame({"x0": pair[:, 0], "x1": pair[:, 1], "x2": rng.normal(4, 1, n)})

    model = multivariate.fit(rows(5_000), ["x0", "x1", "x2"], [], seed=0)
    assert model is not None and model.components.shape[0] == 2
    batch = rows(20_000)
    client = rng.random(len(batch)) < 0.05
    batch.loc[client, "x2"] *= 2
    test = multivariate.assess(model, batch, 0.0025, 0.1, tail=True)
    row_errors = multivariate._row_errors(model.residuals(batch))
    assert tails.tail_test(row_errors, model.held_out_errors).ratio < 2  # blind to it
    assert test.flag and test.tail is not None
    assert (test.tail.feature, test.tail.side, test.tail.tests) == ("x2", "high", 7)
    assert test.tail.p_value < 1e-8 and test.tail.ratio > 3
    assert 6.0 < test.tail.bar < 6.7  # x2's held-out top 1%, in its own units: about 4 + 2.33
    clean = multivariate.assess(model, rows(20_000), 0.0025, 0.1, tail=True)
    assert not clean.flag


def test_a_flipped_correlation_is_caught_where_no_marginal_moves() -> None:
    """Two of ten features go from correlation 0.8 to -0.8 with their marginals kept: every
    per-feature test passes, the features together flag, and f0, f1 grew most."""
    rng = np.random.default_rng(8)
    profile = profile_of(frame(rng, 5_000))
    settings = DriftSettings()
    for _ in range(5):
        verdict = check_drift(profile, frame(rng, 1_000, rho=-0.8), settings)
        test = verdict.multivariate
        assert test is not None and test.flag and test.p_value < 1e-6
        assert {name for name, _share in test.contributions[:2]} == {"f0", "f1"}
        assert verdict.drifted_features == []
        assert verdict.status == DriftStatus.NO_DRIFT  # reported only, by default
    retrain = DriftSettings(multivariate_retrain=True)
    assert check_drift(profile, frame(rng, 1_000, rho=-0.8), retrain).status == DriftStatus.DRIFT


def test_the_budget_is_shared_when_it_may_call_drift() -> None:
    """With ``multivariate_retrain`` the per-feature verdict gets the other half of the rate."""
    alone, shared = DriftSettings(), DriftSettings(multivariate_retrain=True)
    assert alone.verdict_rate == 0.01 and shared.verdict_rate == 0.005
    assert alone.multivariate_level == shared.multivariate_level == 0.005
    assert DriftSettings(multivariate=False, multivariate_retrain=True).verdict_rate == 0.01


def test_the_profile_keeps_it_and_the_report_shows_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    profile = profile_of(frame(rng, 2_000))
    profile.save(tmp_path / "profile.npz")
    loaded = ReferenceProfile.load(tmp_path / "profile.npz")
    batch = frame(rng, 500, rho=-0.8)
    settings = DriftSettings()
    before, after = check_drift(profile, batch, settings), check_drift(loaded, batch, settings)
    assert before.multivariate == after.multivariate  # stored values decide alike
    record = after.to_dict()["multivariate"]
    assert record["method"] == "pca_reconstruction_error" and record["flag"] is True
    assert record["calls_drift"] is False
    shown = "\n".join(describe_report({**after.to_dict(), "batch": "b"}))
    assert "features together: reconstruction error +" in shown and "flagged" in shown
    page = render_html(after, loaded, {"batch": "b"})
    assert "Features together" in page and "Grew most: f" in page
    # /metrics reads it from the stored report
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"features": [], "multivariate": record}))
    gauges = _numbers_in_report(str(report), 0).multivariate
    assert dict((labels[0], value) for labels, value in gauges)["flag"] == 1.0


def test_too_little_to_fit_is_no_test() -> None:
    rng = np.random.default_rng(10)
    assert multivariate.fit(frame(rng, 60), NUMERIC, ["kind"]) is None
    assert multivariate.fit(frame(rng, 500)[["f0"]], ["f0"], []) is None  # one dimension
    profile = profile_of(frame(rng, 500))
    assert check_drift(profile, frame(rng, 20), DriftSettings()).multivariate is None
    assert (
        check_drift(profile, frame(rng, 200), DriftSettings(multivariate=False)).multivariate
        is None
    )
