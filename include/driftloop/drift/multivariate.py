"""Multivariate drift: how the features move together, by PCA reconstruction error.

Why: every per-feature statistic looks at one column. A change in how features relate (two
features whose correlation flips while each marginal stays put) passes all of them, yet the
model's inputs have changed where it matters. NannyML's answer is the data reconstruction
error: compress the reference's standardized rows with PCA and measure how badly a batch's
rows are rebuilt; rows that break the reference's structure rebuild badly.

How it stays calibrated. A PCA fitted on a sample rebuilds that very sample better than new
rows, so comparing a batch with the reference's own (in-sample) errors would flag clean
batches. At profile build the reference is split in two halves: PCA is fitted on one, and the
errors of the other, held-out half are kept. Given the fitted PCA (a fixed function), a clean
batch's row errors and the held-out errors are draws from one law, so a one-sided
Mann-Whitney test of "the batch's errors are larger" holds its level at any batch size and
any shape of the data (ranks, not means: the errors of heavy-tailed columns are heavy-tailed
too). A floor on the increase of the mean error keeps huge batches from flagging changes too
small to matter, as the per-feature effect floors do.

The tail test (served traffic, ``driftloop.drift.traffic``). A client that sends a feature in
other units is a few percent of the rows gone far off, which moves the batch's mean rank
little. Its rows rebuild very badly, though: the number of batch rows whose error exceeds the
k-th largest held-out error is, under no drift, beta-binomial(n, k, m - k + 1) for any law of
the errors (the rows are exchangeable with the held-out ones), so its p-value is exact at
every batch size, with the held-out sample's own luck accounted for. The same count is taken
for each numeric feature on its own, past the reference rows' top and bottom 1% of its values:
PCA keeps whichever directions carry most variance, and where the reference's variance is
spread evenly the kept components may happen to lie along one feature, which then rebuilds
well even when a client sends it doubled (one reference in ten in the traffic benchmark missed
most such windows); that feature's own tail does not depend on the components. The tail tests
share one half of the level (Bonferroni over the row errors and both tails of every numeric
feature), the rank test the other, and a tail test's floor is an exceedance share at least
``TAIL_FLOOR`` times the expected one.

Encoding: numeric columns are imputed with the reference's median and standardized;
categorical columns become indicators of their most common levels (other and missing share
the zero row), standardized the same way. Missingness itself is the per-feature check's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from driftloop.drift import tails
from driftloop.drift.labels import category_labels
from driftloop.drift.tails import TAIL_FLOOR, TailTest

VARIANCE_KEPT = 0.65
"""Share of the reference's standardized variance the components keep (NannyML's default)."""
MAX_LEVELS = 20
"""Categorical levels encoded per column (the most common; the rest share one row)."""
MIN_REFERENCE_ROWS = 100
FIT_ROWS_MAX = 50_000
HELD_OUT_MAX = 20_000


@dataclass(frozen=True)
class MultivariateReference:
    """What a profile keeps to test batches: the encoding, the components, held-out errors."""

    numeric: list[str]
    categorical: dict[str, list[str]]  # column -> encoded levels
    centers: list[float]  # numeric imputation values (medians)
    means: np.ndarray  # per encoded dimension
    scales: np.ndarray
    components: np.ndarray  # (components, dimensions), orthonormal rows
    held_out_errors: np.ndarray  # sorted
    expected_residuals: np.ndarray  # held-out mean squared residual per dimension
    variance_kept: float
    # (2, numeric features): the reference rows' k-th smallest and k-th largest standardized
    # value of each, k the top 1% of ``feature_rows`` (both halves: a marginal quantile needs
    # no held-out rows, and twice the rows make its bar steadier); empty in profiles built
    # before they were kept
    feature_bars: np.ndarray = field(default_factory=lambda: np.empty((2, 0)))
    feature_rows: int = 0

    @property
    def dimensions(self) -> list[str]:
        names = list(self.numeric)
        for column, levels in self.categorical.items():
            names.extend(f"{column}={level}" for level in levels)
        return names

    def standardized(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row encoded and standardized as the components were fitted."""
        encoded = _encode(frame, self.numeric, self.centers, self.categorical)
        return (encoded - self.means) / self.scales

    def residuals(self, frame: pd.DataFrame, standardized: np.ndarray | None = None) -> np.ndarray:
        """Each row's standardized residual after rebuilding it from the components."""
        encoded = self.standardized(frame) if standardized is None else standardized
        return encoded - (encoded @ self.components.T) @ self.components

    def to_meta(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "centers": self.centers,
            "variance_kept": self.variance_kept,
            "feature_rows": self.feature_rows,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "mv_means": self.means,
            "mv_scales": self.scales,
            "mv_components": self.components,
            "mv_held_out_errors": self.held_out_errors.astype(np.float32),
            "mv_expected_residuals": self.expected_residuals,
            "mv_feature_bars": self.feature_bars,
        }

    @classmethod
    def from_stored(cls, meta: dict[str, Any], arrays: Any) -> MultivariateReference:
        return cls(
            list(meta["numeric"]),
            {k: list(v) for k, v in meta["categorical"].items()},
            list(meta["centers"]),
            np.asarray(arrays["mv_means"], dtype=float),
            np.asarray(arrays["mv_scales"], dtype=float),
            np.asarray(arrays["mv_components"], dtype=float),
            np.asarray(arrays["mv_held_out_errors"], dtype=float),
            np.asarray(arrays["mv_expected_residuals"], dtype=float),
            float(meta["variance_kept"]),
            np.asarray(arrays["mv_feature_bars"], dtype=float)
            if "mv_feature_bars" in arrays
            else np.empty((2, 0)),
            int(meta.get("feature_rows", 0)),
        )


@dataclass(frozen=True)
class MultivariateTest:
    """One batch against the reference's structure."""

    rows: int
    mean_error: float
    reference_mean_error: float
    p_value: float
    level: float
    floor: float  # the smallest relative increase of the mean error worth an alarm
    flag: bool
    contributions: list[tuple[str, float]] = field(default_factory=list)
    tail: TailTest | None = None  # with the tail test (traffic windows); then p_value is both's

    @property
    def increase(self) -> float:
        if self.reference_mean_error <= 0:
            return math.inf if self.mean_error > 0 else 0.0
        return self.mean_error / self.reference_mean_error - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "pca_reconstruction_error",
            "rows": self.rows,
            "mean_error": self.mean_error,
            "reference_mean_error": self.reference_mean_error,
            "increase": self.increase if math.isfinite(self.increase) else "inf",
            "p_value": self.p_value,
            "level": self.level,
            "floor": self.floor,
            "flag": self.flag,
            "contributions": [{"feature": f, "share": s} for f, s in self.contributions],
            **({} if self.tail is None else {"tail": self.tail.to_dict()}),
        }


def fit(
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    seed: int = 0,
    variance_kept: float = VARIANCE_KEPT,
) -> MultivariateReference | None:
    """Fit on one random half of ``frame``, keep the other half's errors; None when the
    reference is too small (fewer than ``MIN_REFERENCE_ROWS`` rows) or has fewer than two
    encoded dimensions (nothing can move together)."""
    if len(frame) < MIN_REFERENCE_ROWS:
        return None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    half = len(frame) // 2
    fit_rows = frame.iloc[order[:half][:FIT_ROWS_MAX]]
    held_rows = frame.iloc[order[half:][:HELD_OUT_MAX]]
    centers = [_median(fit_rows[name]) for name in numeric]
    levels = {name: _common_levels(fit_rows[name]) for name in categorical}
    levels = {name: kept for name, kept in levels.items() if kept}
    encoded = _encode(fit_rows, numeric, centers, levels)
    if encoded.shape[1] < 2:
        return None
    means = encoded.mean(axis=0)
    scales = encoded.std(axis=0)
    scales[scales <= 1e-12] = 1.0  # a constant dimension: no scale, rebuilt exactly
    standardized = (encoded - means) / scales
    _u, singular, components = np.linalg.svd(standardized, full_matrices=False)
    share = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
    kept = int(np.searchsorted(share, variance_kept) + 1)
    kept = min(kept, components.shape[0])
    reference = MultivariateReference(
        list(numeric),
        levels,
        centers,
        means,
        scales,
        components[:kept],
        np.empty(0),
        np.empty(0),
        variance_kept,
    )
    held_standardized = reference.standardized(held_rows)
    residuals = reference.residuals(held_rows, held_standardized)
    # stored as float32: rounded now, so a loaded profile decides as the one in memory does
    held_out = np.sort(_row_errors(residuals)).astype(np.float32)
    return replace(
        reference,
        held_out_errors=held_out.astype(float),
        expected_residuals=np.mean(residuals**2, axis=0),
        feature_bars=tails.feature_bars(
            np.vstack((standardized[:, : len(numeric)], held_standardized[:, : len(numeric)]))
        ),
        feature_rows=len(fit_rows) + len(held_rows),
    )


def assess(
    reference: MultivariateReference,
    batch: pd.DataFrame,
    level: float,
    floor: float,
    tail: bool = False,
) -> MultivariateTest:
    """The batch's rows against the held-out rows: one-sided Mann-Whitney on their errors,
    and the dimensions whose residuals grew most (their share of the growth). With ``tail``,
    also the tail test (module docstring); the two then share ``level``, each at half."""
    standardized = reference.standardized(batch)
    residuals = reference.residuals(batch, standardized)
    errors = _row_errors(residuals)
    held_out = reference.held_out_errors
    result = mannwhitneyu(errors, held_out, alternative="greater", method="asymptotic")
    p_value = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0
    if tail:
        tested = _tail_tests(reference, standardized, errors)
        return _with_tail(reference, residuals, errors, p_value, level, floor, tested)
    mean_error, reference_mean = float(errors.mean()), float(held_out.mean())
    test_result = MultivariateTest(
        rows=len(batch),
        mean_error=mean_error,
        reference_mean_error=reference_mean,
        p_value=p_value,
        level=level,
        floor=floor,
        flag=False,
        contributions=_contributions(reference, residuals),
    )
    flag = p_value <= level and test_result.increase >= floor
    return replace(test_result, flag=flag)


def _tail_tests(
    reference: MultivariateReference, standardized: np.ndarray, errors: np.ndarray
) -> list[TailTest]:
    """The row errors' tail test, then both tails of every numeric feature (where the
    profile kept their bars)."""
    tests = [tails.tail_test(errors, reference.held_out_errors)]
    bars, m, n = reference.feature_bars, reference.feature_rows, errors.size
    if bars.shape[1] != len(reference.numeric) or m == 0 or n == 0:
        return tests
    k = tails.tail_rank(m)
    values = standardized[:, : bars.shape[1]]
    below = np.count_nonzero(values < bars[0], axis=0)
    above = np.count_nonzero(values > bars[1], axis=0)
    for j, name in enumerate(reference.numeric):
        for side, count, bar in (("low", below[j], bars[0, j]), ("high", above[j], bars[1, j])):
            in_units = float(bar * reference.scales[j] + reference.means[j])
            tests.append(tails.exceedances(int(count), n, m, k, in_units, feature=name, side=side))
    return tests


def _with_tail(
    reference: MultivariateReference,
    residuals: np.ndarray,
    errors: np.ndarray,
    rank_p: float,
    level: float,
    floor: float,
    tested: list[TailTest],
) -> MultivariateTest:
    """The rank test and the tail tests at half the level each, the tail tests sharing
    theirs (Bonferroni); the p-value is twice the smaller of the two halves', at most 1."""
    family = len(tested)
    past_floor = [t for t in tested if t.ratio >= TAIL_FLOOR]
    tail = replace(min(past_floor or tested, key=lambda t: t.p_value), tests=family)
    tail_p = min(1.0, family * min(t.p_value for t in tested))
    test = MultivariateTest(
        rows=len(errors),
        mean_error=float(errors.mean()),
        reference_mean_error=float(reference.held_out_errors.mean()),
        p_value=min(1.0, 2.0 * min(rank_p, tail_p)),
        level=level,
        floor=floor,
        flag=False,
        contributions=_contributions(reference, residuals),
        tail=tail,
    )
    by_rank = 2.0 * rank_p <= level and test.increase >= floor
    by_tail = bool(past_floor) and 2.0 * family * tail.p_value <= level
    return replace(test, flag=by_rank or by_tail)


def _row_errors(residuals: np.ndarray) -> np.ndarray:
    """Each row's reconstruction error: the squared length of its residual."""
    return np.einsum("ij,ij->i", residuals, residuals)


def _contributions(
    reference: MultivariateReference, residuals: np.ndarray, top: int = 3
) -> list[tuple[str, float]]:
    """The features whose squared residuals grew most over the held-out rows' (a categorical
    column's levels summed), with their share of the growth."""
    expected = reference.expected_residuals
    observed = np.mean(residuals**2, axis=0)
    growth = np.clip(observed - expected, 0.0, None)
    by_feature: dict[str, float] = {}
    for name, value in zip(reference.dimensions, growth, strict=True):
        feature = name.split("=", 1)[0] if name not in reference.numeric else name
        by_feature[feature] = by_feature.get(feature, 0.0) + float(value)
    total = sum(by_feature.values())
    if total <= 0:
        return []
    ranked = sorted(by_feature.items(), key=lambda item: -item[1])[:top]
    return [(name, value / total) for name, value in ranked if value > 0]


def _median(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else 0.0


def _common_levels(series: pd.Series) -> list[str]:
    counts = category_labels(series).value_counts()
    return [str(level) for level in counts.index[:MAX_LEVELS]]


def _encode(
    frame: pd.DataFrame,
    numeric: list[str],
    centers: list[float],
    categorical: dict[str, list[str]],
) -> np.ndarray:
    parts = []
    for name, center in zip(numeric, centers, strict=True):
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        parts.append(np.where(np.isfinite(values), values, center))
    for name, levels in categorical.items():
        labels = category_labels(frame[name]).reindex(frame.index).to_numpy(dtype=object)
        parts.extend((labels == level).astype(float) for level in levels)
    if not parts:
        return np.zeros((len(frame), 0))
    return np.column_stack(parts)
