"""The categorical test: Jensen-Shannon by permutation, and a test for levels the reference lacks.

Why not a null drawn from the reference's own levels (format 2 profiles did that): real
columns with hundreds or thousands of levels (zip codes, merchants) put some of every batch on
levels the reference never saw (the Good-Turing missing mass), which such a null never does,
so up to every clean batch flagged. The population's unseen levels cannot be known from the
reference alone, but the batch shows them: conditional on the two samples pooled, a batch from
the reference's population is a random split of the pooled counts (a permutation). So:

- Jensen-Shannon: its p-value is the share of random splits of the pooled counts (reference
  size kept) whose distance is at least the observed one. Exact at any number of levels,
  reference and batch size, with the pooled sample standing in for the population; it costs
  ``draws x levels`` (multivariate hypergeometric splits), nothing per row.
- New levels: a level absent from the reference holding ``K`` of the batch's rows. Given the
  pooled counts, a level of ``t`` pooled rows lies wholly in the batch with probability
  ``C(n, t) / C(n + N, t)``; summed over the levels with ``t >= K`` (a union bound) this is a
  p-value for "some level absent from the reference has at least K batch rows". It catches one
  new level reaching 5% of a large batch even where the reference misses most of the mass
  (10,000 levels, 500 reference rows), where the distance hardly moves.

The statistic's level is split between the two (``NEW_LEVEL_SHARE`` to the new-level test), so
the categorical feature still flags at most at its level under no drift. Both need the batch's
counts of unseen labels one by one: a categorical column arrives as counts per reference level
followed by one count per unseen label (:meth:`ColumnProfile.level_counts`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from driftloop.drift.calibration import second_stage
from driftloop.drift.statistics import jensen_shannon_rows
from driftloop.drift.verdict import StatisticTest

if TYPE_CHECKING:
    from driftloop.drift.column import ColumnProfile
    from driftloop.drift.statistics import Measurement

SPARSE_RATIO = 4
"""Splits are drawn sparsely (``sparse_js_null``) when the smaller side has fewer rows than a
quarter of the pooled levels: then it holds few of them and the dense splits cost most."""
COUNT_RATIO = 12
"""Dense splits draw the smaller side row by row (numpy's ``count`` method) unless it holds
more than this many rows per pooled level; then level by level (``marginals``). Measured per
1,000 draws on 2 cores: ``count`` about 12.5 us per row of the smaller side, ``marginals``
about 150 us per level (5 to 10,000 levels, 600 to 200,000 pooled rows)."""
NEW_LEVEL_SHARE = 0.1
"""The share of a categorical statistic's level spent on the new-level test: its evidence,
when a new level is large, is overwhelming (p below 1e-6), so a small share costs it nothing."""


@dataclass(frozen=True)
class CategoricalTest:
    """The permutation p-values and the critical distance at the level asked for."""

    p_value: float  # combined: min(p_js / (1 - share), p_new / share), at most 1
    js_p_value: float
    new_level_p_value: float
    critical: float  # the distance a batch must exceed for p_js <= (1 - share) * level
    unseen_share: float
    largest_unseen: int


def reference_counts(probabilities: np.ndarray, count: int) -> np.ndarray:
    """The reference's counts per level, recovered from its stored frequencies (exact)."""
    return np.rint(probabilities[:-1] * count).astype(np.int64)


def new_level_p_value(reference: np.ndarray, batch: np.ndarray) -> tuple[float, int]:
    """Union-bound p-value of the largest batch count on a level the reference lacks.

    ``reference`` and ``batch`` are counts on the same levels (pooled); returns the p-value
    and that largest count (0: no unseen level, p-value 1).
    """
    unseen = batch[reference == 0]
    largest = int(unseen.max()) if unseen.size else 0
    if largest == 0:
        return 1.0, 0
    n, m = int(batch.sum()), int(reference.sum())
    pooled = (reference + batch)[(reference + batch) >= largest]
    # log C(n, t) - log C(n + m, t) = lgamma(n+1) - lgamma(n-t+1) - lgamma(n+m+1) + lgamma(n+m-t+1)
    total = 0.0
    for t in pooled.tolist():
        if t > n:
            continue  # cannot lie wholly in the batch
        log_p = (
            math.lgamma(n + 1)
            - math.lgamma(n - t + 1)
            - math.lgamma(n + m + 1)
            + math.lgamma(n + m - t + 1)
        )
        total += math.exp(log_p)
    return min(1.0, total), largest


def unseen_by_chance_bound(largest: int, n: int, m: int) -> float:
    """A bound on the chance that some level the ``m``-row reference lacks holds at least
    ``largest`` rows of an ``n``-row batch, over the draw of the reference as well.

    Why: :func:`new_level_p_value` is exact given the pooled counts, so it holds averaged over
    references, but a user keeps one reference. One that missed a level of about 1% by chance
    (1,000 rows, Zipf 2,000 levels: about one reference in 100) saw that test flag 40% of later
    batches. Over both draws, a level of population share ``p`` is absent from the reference
    with probability ``(1 - p)^m`` and reaches ``largest`` batch rows with the binomial tail;
    the shares sum to at most 1, so the sum over levels is at most the largest value over
    ``p`` of ``(1 - p)^m P(Bin(n, p) >= largest) / p``, whatever the population. A new level
    must then be larger than the reference could plausibly have missed (about ``ln(1/level)
    / m`` of the batch): the same reference flags about 7% of those batches.
    """
    from scipy.optimize import minimize_scalar
    from scipy.stats import binom

    if largest <= 1:
        return 1.0  # one row: the bound exceeds 1 as p goes to 0 (it tends to n)

    def log_bound(p: np.ndarray | float) -> np.ndarray | float:
        return m * np.log1p(-p) + binom.logsf(largest - 1, n, p) - np.log(p)

    grid = np.geomspace(1.0 / (100.0 * (n + m)), 1.0 - 1e-12, 400)
    values = log_bound(grid)
    best = int(np.argmax(values))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    refined = minimize_scalar(
        lambda p: -log_bound(p), bounds=(low, high), method="bounded", options={"xatol": 1e-12}
    )
    peak = max(float(values[best]), -float(refined.fun))
    return float(min(1.0, math.exp(peak)))


def permutation_test(
    reference: np.ndarray,
    batch: np.ndarray,
    observed: float,
    draws: int,
    level: float,
    distance_rows: object,
    more: int = 0,
) -> CategoricalTest:
    """The categorical test of ``batch`` counts against ``reference`` counts (same levels).

    ``distance_rows(reference_counts, batch_counts)`` is the row-wise distance (Jensen-Shannon);
    ``observed`` the batch's own. The generator is seeded by both count vectors, so the same
    batch against the same reference always gets the same verdict. ``more`` splits are drawn
    when none of the first ``draws`` reaches the observed distance
    (:func:`~driftloop.drift.calibration.second_stage`).
    """
    reference = np.asarray(reference, dtype=np.int64)
    batch = np.asarray(batch, dtype=np.int64)
    n, m = int(batch.sum()), int(reference.sum())
    pooled = reference + batch
    keep = pooled > 0
    pooled, reference, batch = pooled[keep], reference[keep], batch[keep]
    seed = hashlib.sha256(reference.tobytes() + b"|" + batch.tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    small = min(n, m)

    def null_of(count: int) -> np.ndarray:
        if distance_rows is jensen_shannon_rows and small * SPARSE_RATIO < pooled.size:
            return np.sort(sparse_js_null(pooled, small, count, rng))
        # draw the smaller side; "count" costs its size per draw, "marginals" the level count
        method = "count" if small < COUNT_RATIO * pooled.size else "marginals"
        side = rng.multivariate_hypergeometric(pooled, small, size=count, method=method)
        other = pooled - side
        ref_draws, batch_draws = (other, side) if small == n else (side, other)
        return np.sort(np.nan_to_num(distance_rows(ref_draws, batch_draws), nan=0.0))  # type: ignore[operator]

    def p_value(null: np.ndarray) -> float:
        # the observed value, rounded as the draws are, so a split equal to the batch counts
        at_least = null.size - np.searchsorted(null, observed - 1e-12, side="left")
        return float((1 + at_least) / (null.size + 1))

    null = null_of(draws)
    js_p = p_value(null)
    if second_stage(js_p, draws, more):
        null = null_of(more)
        js_p = p_value(null)
    new_p, largest = new_level_p_value(reference, batch)
    if largest and new_p < 1.0:  # both valid: the larger keeps the reference's error out
        new_p = max(new_p, unseen_by_chance_bound(largest, n, m))
    js_level = (1.0 - NEW_LEVEL_SHARE) * level
    rank = math.ceil((null.size + 1) * (1.0 - js_level))
    critical = float(null[rank - 1]) if 1 <= rank <= null.size else math.inf
    combined = min(1.0, js_p / (1.0 - NEW_LEVEL_SHARE), new_p / NEW_LEVEL_SHARE)
    unseen = float(batch[reference == 0].sum() / n) if n else 0.0
    return CategoricalTest(combined, js_p, new_p, critical, unseen, largest)


def sparse_js_null(
    pooled: np.ndarray, small: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Jensen-Shannon distances of ``draws`` random splits of the ``pooled`` counts, the smaller
    side holding ``small`` rows, computed from the levels that side holds only.

    Why: with many levels and a small side (a 100-row batch of a column of 10,000 levels), the
    dense splits cost ``draws x levels`` (seconds per check), while a level the small side lacks
    adds a known term: with ``p`` the other side's share of that level, ``p log 2``. So
    ``JS ln 2 = ln 2 (1 - sum over held levels of p) + sum over held levels of the two
    rel_entr terms``, and a split costs ``small``. Symmetric in the two sides, as JS is.
    """
    total = int(pooled.sum())
    other = total - small
    bounds = np.cumsum(pooled)
    # each draw: which of the pooled rows the small side takes (without replacement)
    rows = np.stack([rng.choice(total, small, replace=False) for _ in range(draws)])
    levels = np.sort(np.searchsorted(bounds, rows, side="right"), axis=1)
    flat = levels.ravel()
    starts = np.flatnonzero(np.r_[True, np.diff(flat) != 0])
    starts = np.union1d(starts, np.arange(draws) * small)  # a run never spans two draws
    held = np.diff(np.r_[starts, flat.size])  # the small side's count of each run's level
    owner = starts // small  # the draw each run belongs to
    q = held / small
    p = (pooled[flat[starts]] - held) / other
    mixed = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = q * np.log(q / mixed) + np.where(p > 0, p * np.log(p / mixed), 0.0)
    per_draw = np.bincount(owner, weights=terms, minlength=draws)
    covered = np.bincount(owner, weights=p, minlength=draws)
    js = (per_draw + np.log(2.0) * (1.0 - covered)) / np.log(2.0)
    return np.sqrt(np.clip(js, 0.0, None) / 2.0)


def statistic_test(
    column: ColumnProfile,
    name: str,
    measurement: Measurement,
    level_counts: np.ndarray,
    level: float,
    floor: float,
    draws: int,
    more: int = 0,
) -> StatisticTest:
    """A categorical column's test by permutation of the pooled counts (see
    ``driftloop.drift.categorical``); its numbers join the measurement's details. ``more``:
    the splits drawn when none of the first ``draws`` reaches the batch's distance."""
    from driftloop.drift.statistics import STATISTICS

    reference = reference_counts(column.probabilities, column.count)
    padded = np.zeros(level_counts.size, dtype=np.int64)
    padded[: reference.size] = reference
    result = permutation_test(
        padded,
        np.rint(level_counts).astype(np.int64),
        measurement.value,
        draws,
        level,
        STATISTICS[name].permutation,
        more,
    )
    details = {
        **measurement.details,
        "js_p_value": result.js_p_value,
        "new_level_p_value": result.new_level_p_value,
        "unseen_share": result.unseen_share,
        "largest_unseen_count": float(result.largest_unseen),
    }
    flag = result.p_value <= level and measurement.value >= floor
    decided_by = "floor" if floor > result.critical else "threshold"
    return StatisticTest(
        replace(measurement, details=details),
        result.critical,
        floor,
        flag,
        decided_by,
        result.p_value,
        level,
    )
