"""A check-time permutation test for the statistics of numeric values (mean shift, Wasserstein).

Why: the null drawn at profile build resamples batches from the reference and closes its ladder
with a limit; both treat the reference as the population. With heavy tails (lognormal sigma 2,
Pareto 2.5) and batches larger than a few hundred rows the reference's own sampling error
decides, and neither the limit nor the interpolation toward it sees it: 4-26% of clean batches
flagged where 1% was promised. A constant reference (a binary flag without ones) has
standard deviation 0, so one differing value flagged.

Under no drift the batch and the reference are one sample split at random. With ``m`` values on
the smaller side and ``M`` on the larger, and ``P`` the pooled sample, the larger side's CDF is
``(size(P) F_P - m F_small) / M``, so in one dimension

    W1(small, large) = (1 + m / M) W1(small, P),  mean(small) - mean(large) = (1 + m / M) (...)

and a draw of the split costs only the smaller side: ``m`` indices into the sorted pool, with
the closed forms of ``driftloop.drift.calibration``. The indices are drawn with replacement
(the split draws without): the null is then a little wider, by at most the finite-population
factor ``sqrt(1 + m / M)`` in spread, so the test errs toward fewer flags. The statistics are
compared in raw units (a common scale cancels), so a constant reference needs no special case.

It runs where the stored null is weak, at every batch size, the reference kept exactly:
heavy-tailed references (:data:`HEAVY_KURTOSIS`) and references of few distinct values
(:data:`DISCRETE_MAX`: constants, flags, ratings, small counts). A pool of at most
:data:`DISCRETE_MAX` distinct values is split exactly, from its counts per value
(``discrete_split_null``). Otherwise, where the smaller side exceeds :data:`PERMUTE_MAX` values
(a draw would cost that many indices) the split is drawn on a compressed pool instead
(``pooled_split_null``: the pool's extremes split exactly, without replacement, its middle by a
Brownian bridge over its quantiles; about 2,000 vectorised steps per statistic at any size).
Elsewhere the stored draws decide, as before (a permutation of every column would cost
``draws x n`` per statistic, seconds per check of a wide table).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from driftloop.drift.calibration import (
    DRAW_BLOCK,
    VALUE_NULLS,
    bridge_levels,
    second_stage,
    sorted_indices,
    sorted_quantiles,
)
from driftloop.drift.verdict import StatisticTest

if TYPE_CHECKING:
    from driftloop.drift.column import ColumnProfile
    from driftloop.drift.statistics import Measurement

HEAVY_KURTOSIS = 10.0
"""Excess kurtosis above which a reference counts as heavy-tailed (a lognormal of sigma 0.6):
below it, the stored null kept its rate in the last calibration (lognormal sigma 0.5, excess
kurtosis 6, included), and a permutation would cost every check of every column."""

PERMUTE_MAX = 20_000
"""Largest smaller side tested by permutation: ``draws x 20,000`` indices, well under a second."""

BLOCK_VALUES = 2_000_000
"""Indices drawn at once (rows x smaller side): bounds the temporary arrays to ~16 MB each."""


@dataclass(frozen=True)
class PermutationResult:
    """The p-value of the raw distance and the raw distance a flag needs at the level."""

    p_value: float
    critical: float


def applies(column: ColumnProfile, n: int) -> bool:
    """Whether a batch of ``n`` values is tested against the pooled sample, at any size: a
    reference of at most :data:`DISCRETE_MAX` distinct values (a constant, a flag, small
    counts: the exact split from the counts per value, :func:`discrete_split_null`, cheap at
    any size; the stored draws flagged 1.4% of clean 100,000-row batches of counts at 1%), or a
    heavy-tailed one (:data:`HEAVY_KURTOSIS`; by permutation up to :data:`PERMUTE_MAX`, by
    :func:`pooled_split_null` beyond). Small batches too: the stored draws resample the
    reference, whose largest values stand in for a tail it has not seen, and a 30-row batch's
    mean is set by its one or two largest values (lognormal sigma 2 against 1,000 rows: 2.6%
    of clean batches flagged at 1%); the permutation costs ``draws x n`` indices there."""
    if not column.exact:
        return False
    if column.distinct_count <= DISCRETE_MAX:  # a constant too: its split is exact and cheap
        return True
    return column.excess_kurtosis > HEAVY_KURTOSIS


def pooled_sorted(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Both sorted samples merged into one sorted array (two sorted runs: linear time)."""
    pooled = np.concatenate((reference, batch))
    pooled.sort(kind="stable")
    return pooled


def split_nulls(
    names: Sequence[str], pooled: np.ndarray, n: int, reference_count: int, draws: int
) -> dict[str, np.ndarray]:
    """Each statistic's sorted null (raw distances) over random splits of the pooled values
    into a batch of ``n`` and a reference of ``reference_count``.

    Seeded by the pooled values, so the same batch against the same reference always gets the
    same verdict; the statistics share the splits (drawing them is half the cost).
    """
    small, large = min(n, reference_count), max(n, reference_count)
    seed = int.from_bytes(hashlib.sha256(pooled.tobytes()).digest()[:8], "little")
    values, counts = distinct_values(pooled)
    fresh = np.random.default_rng
    if values.size <= DISCRETE_MAX:  # each statistic from the same seed, as for the splits
        return {
            name: np.sort(discrete_split_null(name, values, counts, small, draws, fresh(seed)))
            for name in names
        }
    if small > PERMUTE_MAX:
        return {
            name: np.sort(pooled_split_null(name, pooled, small, draws, fresh(seed)))
            for name in names
        }
    rng = fresh(seed)
    rows = max(1, BLOCK_VALUES // small)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for at in range(0, draws, rows):
        index = sorted_indices(pooled.size, rng, min(rows, draws - at), small)
        for name in names:
            parts[name].append(VALUE_NULLS[name](pooled, 1.0, index))
    return {
        name: np.sort(np.concatenate(drawn)) * (1.0 + small / large)
        for name, drawn in parts.items()
    }


@dataclass
class Splits:
    """The splits of one column's pooled values, shared by its statistics of values, drawn in
    two stages (:func:`~driftloop.drift.calibration.second_stage`): ``draws`` first, and
    ``more`` (up to what the batch verdict's bar needs, ``DriftSettings.draws``) only for a
    statistic none of the first beat. Drawing the larger null for every column of every check
    cost the heavy-tailed columns' permutation four times its time."""

    names: Sequence[str]
    pooled: np.ndarray
    n: int
    reference_count: int
    draws: int
    more: int
    _nulls: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def null(self, name: str, draws: int) -> np.ndarray:
        if draws not in self._nulls:
            self._nulls[draws] = split_nulls(
                self.names, self.pooled, self.n, self.reference_count, draws
            )
        return self._nulls[draws][name]

    def test(
        self,
        column: ColumnProfile,
        name: str,
        measurement: Measurement,
        level: float,
        floor: float,
    ) -> StatisticTest:
        test = statistic_test(column, name, measurement, self.null(name, self.draws), level, floor)
        if second_stage(test.p_value or 1.0, self.draws, self.more):
            null = self.null(name, self.more)
            test = statistic_test(column, name, measurement, null, level, floor)
        return test


def split_test(null: np.ndarray, observed: float, level: float) -> PermutationResult:
    """The p-value of ``observed`` against a sorted null, and the null's critical distance."""
    # a relative tolerance: a split equal to the observed one must count as at least as large
    at_least = null.size - np.searchsorted(null, observed * (1.0 - 1e-9), side="left")
    p_value = float((1 + at_least) / (null.size + 1))
    rank = math.ceil((null.size + 1) * (1.0 - level))
    critical = float(null[rank - 1]) if 1 <= rank <= null.size else math.inf
    return PermutationResult(p_value, critical)


def permutation_test(
    name: str,
    pooled: np.ndarray,
    n: int,
    reference_count: int,
    observed: float,
    draws: int,
    level: float,
) -> PermutationResult:
    """The p-value of ``observed`` (raw distance of batch and reference) over random splits
    of the pooled values (:func:`split_nulls`, one statistic)."""
    null = split_nulls([name], pooled, n, reference_count, draws)[name]
    return split_test(null, observed, level)


DISCRETE_MAX = 64
"""Most distinct pooled values for which the split is drawn exactly from the counts per value
(:func:`discrete_split_null`): flags, ratings, small counts."""


def distinct_values(pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted pool's distinct values and how many times each occurs (one linear pass)."""
    starts = np.flatnonzero(np.concatenate(([True], pooled[1:] != pooled[:-1])))
    return pooled[starts], np.diff(np.append(starts, pooled.size))


def discrete_split_null(
    name: str,
    values: np.ndarray,
    counts: np.ndarray,
    small: int,
    draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of the raw statistic over random splits of a pool with few distinct values: the
    exact permutation distribution, for both statistics depend on the split only through how
    many of each value land on the smaller side, a multivariate hypergeometric draw.

    Why: a binary flag (1% ones) is heavy-tailed by kurtosis, and the Gaussian middle of
    :func:`pooled_split_null` reads its one step at the nearest bridge level, not at the step
    itself: 1.9% of clean 100,000-row batches flagged where 1% was promised (issue 26).
    """
    total = int(counts.sum())
    large = total - small
    on_small = rng.multivariate_hypergeometric(counts, small, size=draws).astype(float)
    on_large = counts - on_small
    if name == "mean_shift":
        return np.abs(on_small @ values / small - on_large @ values / large)
    steps = np.diff(values)
    gap = np.cumsum(on_small, axis=1)[:, :-1] / small - np.cumsum(on_large, axis=1)[:, :-1] / large
    return np.abs(gap) @ steps


TAIL_MEMBERS = 256
"""Expected members of the smaller side among the pooled extremes drawn exactly, per end."""

TAIL_RANKS = (1_024, 8_192)
"""Fewest and most pooled values drawn exactly at each end (see :func:`pooled_split_null`)."""


def tail_ranks(total: int, small: int) -> int:
    """Pooled values drawn exactly at each end: enough to hold about :data:`TAIL_MEMBERS` of
    the smaller side (``small`` of ``total``), within :data:`TAIL_RANKS`, at most a quarter."""
    share = small / total
    wanted = math.ceil(TAIL_MEMBERS / share)
    return int(min(total // 4, max(TAIL_RANKS[0], min(TAIL_RANKS[1], wanted))))


def pooled_split_null(
    name: str, pooled: np.ndarray, small: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the raw statistic over random splits of the pool (``small`` values on one
    side), with the pool's extremes drawn exactly and the rest by its Gaussian limit.

    Why: a heavy tail's noise lives in its few largest values, and whether each lands on the
    smaller side is a coin of bias ``small / size(P)``, far from normal when that bias is not
    1/2. The Brownian bridge over the whole pool (the permutation's limit, used here before)
    let lognormal (sigma 2) batches of 30,000 rows against 100,000 flag 2.75% where 1% was
    promised, and the ``|Z|`` limit of the mean shift 1.75% at 100,000 / 100,000 (issue 26).

    So the :func:`tail_ranks` lowest and highest pooled values are split exactly: drawn one
    by one without replacement (each lands on the smaller side with probability remaining
    members / remaining values), vectorised over the draws. Given how many members the
    extremes took, the middle of the pool holds the rest, and its count process is a
    hypergeometric bridge with hundreds of members per end: drawn as a Brownian bridge over
    its quantiles (:func:`~driftloop.drift.calibration.bridge_levels`), and its sum as a
    normal. With ``F_S`` the smaller side's CDF and ``F_P`` the pool's, ``W1 = sum over the
    pooled steps of |F_S - F_P| x step`` and the mean's difference follow, both scaled by
    ``1 + small / large`` to the two sides' distance (see the module's docstring).
    Checked against brute-force splits (lognormal sigma 2, 30,000 of 130,000, 20,000 splits
    over 10 pools): the 99% quantile drawn here is exceeded by 1.0-1.1% of exact splits.
    """
    total = pooled.size
    large = total - small
    ranks = tail_ranks(total, small)
    remaining = np.full(draws, float(small))
    left = float(total)
    below = np.zeros(draws)  # members among the lowest values so far
    above = np.zeros(draws)  # members among the highest values so far
    tails = np.zeros(draws)  # W1: the exact steps; mean: the members' sum
    wasserstein = name != "mean_shift"
    for rank in range(ranks):
        low, high = pooled[rank], pooled[total - 1 - rank]
        member = rng.random(draws) * left < remaining
        remaining -= member
        left -= 1.0
        below += member
        top = rng.random(draws) * left < remaining
        remaining -= top
        left -= 1.0
        above += top
        if wasserstein:  # the step above the low value, and the one below the high value
            step_low = pooled[rank + 1] - low
            step_high = high - pooled[total - 2 - rank]
            tails += np.abs(below / small - (rank + 1) / total) * step_low
            tails += np.abs((small - above) / small - (total - 1 - rank) / total) * step_high
        else:
            tails += member * low + top * high
    middle = pooled[ranks : total - ranks]
    size = middle.size
    spread = np.sqrt(remaining * (size - remaining) / (size - 1))  # of the middle's count
    if not wasserstein:
        middle_sum = remaining * middle.mean() + spread * middle.std() * rng.standard_normal(draws)
        mean = (tails + middle_sum) / small
        return np.abs(mean - pooled.mean()) * (1.0 + small / large)
    levels = bridge_levels(size)
    edges = np.concatenate(([0.0], (levels[1:] + levels[:-1]) / 2.0, [1.0]))
    steps = np.diff(sorted_quantiles(middle, edges))
    spacing = np.sqrt(np.diff(np.concatenate(([0.0], levels, [1.0]))))
    # F_S - F_P across the middle: the tails' offset, the middle's share, and its bridge
    offset = below / small - ranks / total
    slope = remaining / small - size / total
    noise = spread / small
    out = np.empty(draws)
    for start in range(0, draws, DRAW_BLOCK):
        block = slice(start, min(draws, start + DRAW_BLOCK))
        rows = block.stop - block.start
        walk = np.cumsum(rng.standard_normal((rows, spacing.size)) * spacing, axis=1)
        bridge = walk[:, :-1] - levels * walk[:, -1:]
        gap = offset[block, None] + slope[block, None] * levels + noise[block, None] * bridge
        out[block] = np.abs(gap) @ steps
    return (tails + out) * (1.0 + small / large)


def raw_distance(name: str, details: dict[str, float]) -> float:
    """The statistic in the data's units, from its measurement's details."""
    if name == "mean_shift":
        return abs(details["current_mean"] - details["reference_mean"])
    return details["distance"]


def statistic_test(
    column: ColumnProfile,
    name: str,
    measurement: Measurement,
    null: np.ndarray,
    level: float,
    floor: float,
) -> StatisticTest:
    """A statistic of values tested against its sorted null over splits of the pooled values
    (:func:`split_nulls`); the threshold shown is the null's critical distance in the
    statistic's units (divided by the sd)."""
    result = split_test(null, raw_distance(name, measurement.details), level)
    if column.std > 0:
        threshold = result.critical / column.std
    else:  # a constant reference: any difference is infinitely many sds
        threshold = 0.0 if result.critical == 0 else math.inf
    flag = result.p_value <= level and measurement.value >= floor
    decided_by = "floor" if floor > threshold else "threshold"
    details = {**measurement.details, "permutation": 1.0}
    return StatisticTest(
        replace(measurement, details=details),
        threshold,
        floor,
        flag,
        decided_by,
        result.p_value,
        level,
    )
