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

It runs where the stored null is weak: heavy-tailed references (:data:`HEAVY_KURTOSIS`) with
batches beyond the resampled sizes, and constant references, the reference kept exactly.
Where the smaller side exceeds :data:`PERMUTE_MAX` values (a draw would cost that many
indices) the permutation's own limit is drawn on the pooled sample instead (``pooled_limit``:
a Brownian bridge over the pool's quantiles, cheap at any size); a constant reference that
large keeps its stored draws. Elsewhere the stored draws decide, as before (a permutation of
every column would cost ``draws x n`` per statistic, seconds per check of a wide table).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from driftloop.drift.calibration import (
    SMALL_SIZES,
    VALUE_NULLS,
    sorted_indices,
    wasserstein_limit,
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


def applies(exact_reference: bool, n: int, reference: np.ndarray, spread: float) -> bool:
    """Whether a batch of ``n`` values is tested against the pooled sample: a constant
    reference (``spread`` 0: its stored draws are all 0; only where the permutation is cheap,
    the smaller side at most :data:`PERMUTE_MAX`), or a heavy-tailed one
    (:data:`HEAVY_KURTOSIS`) beyond the resampled sizes, where the stored null leans on its
    limit (by permutation up to :data:`PERMUTE_MAX`, by the permutation's limit beyond)."""
    if not exact_reference:
        return False
    if not spread > 0:
        return min(n, reference.size) <= PERMUTE_MAX
    return n > SMALL_SIZES[-1] and excess_kurtosis(reference, spread) > HEAVY_KURTOSIS


KURTOSIS_POINTS = 20_000
"""Sorted values the kurtosis is estimated from (evenly spaced, the maximum included): the
check stays O(20,000) per column however large the reference."""


def excess_kurtosis(values: np.ndarray, spread: float) -> float:
    """The sample's excess kurtosis: 0 for a normal, 10 for a lognormal of sigma 0.6. A
    reference of more than :data:`KURTOSIS_POINTS` (sorted) values is read at evenly spaced
    ranks, its largest and smallest values among them."""
    if values.size > KURTOSIS_POINTS:
        values = values[np.linspace(0, values.size - 1, KURTOSIS_POINTS).astype(np.int64)]
    centred = (values - values.mean()) / spread
    return float(np.mean(centred**4) - 3.0)


def pooled_sorted(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Both sorted samples merged into one sorted array (two sorted runs: linear time)."""
    pooled = np.concatenate((reference, batch))
    pooled.sort(kind="stable")
    return pooled


def permutation_test(
    name: str,
    pooled: np.ndarray,
    n: int,
    reference_count: int,
    observed: float,
    draws: int,
    level: float,
) -> PermutationResult:
    """The p-value of ``observed`` (raw distance of batch and reference) over random splits.

    Seeded by the pooled values, so the same batch against the same reference always gets the
    same verdict.
    """
    small, large = min(n, reference_count), max(n, reference_count)
    seed = hashlib.sha256(pooled.tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    if small > PERMUTE_MAX:
        null = np.sort(pooled_limit(name, pooled, draws, rng)) * math.sqrt(1 / small + 1 / large)
    else:
        statistic = VALUE_NULLS[name]
        rows = max(1, BLOCK_VALUES // small)
        parts = [
            statistic(pooled, 1.0, sorted_indices(pooled.size, rng, min(rows, draws - at), small))
            for at in range(0, draws, rows)
        ]
        null = np.sort(np.concatenate(parts)) * (1.0 + small / large)
    # a relative tolerance: a split equal to the observed one must count as at least as large
    at_least = null.size - np.searchsorted(null, observed * (1.0 - 1e-9), side="left")
    p_value = float((1 + at_least) / (null.size + 1))
    rank = math.ceil((null.size + 1) * (1.0 - level))
    critical = float(null[rank - 1]) if 1 <= rank <= null.size else math.inf
    return PermutationResult(p_value, critical)


def pooled_limit(name: str, pooled: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """The permutation null's limit in raw units, scaled to ``sqrt(1/m + 1/M) = 1``: random
    splits of the pool are, for large sides, ``|Z|`` times the pool's sd (mean shift) and the
    bridge integral over the pool's quantile function (Wasserstein). Drawn on the pooled
    sample, whose tails hold both sides' extremes, not on the reference alone, whose limit let
    lognormal (sigma 2) batches of 100,000 rows flag 4-5% where 1% was promised (issue 26)."""
    if name == "mean_shift":
        return np.abs(rng.standard_normal(draws)) * float(pooled.std())
    return wasserstein_limit(pooled, 1.0, draws, rng)


def raw_distance(name: str, details: dict[str, float]) -> float:
    """The statistic in the data's units, from its measurement's details."""
    if name == "mean_shift":
        return abs(details["current_mean"] - details["reference_mean"])
    return details["distance"]


def statistic_test(
    column: ColumnProfile,
    name: str,
    measurement: Measurement,
    pooled: np.ndarray,
    n: int,
    level: float,
    floor: float,
    draws: int,
) -> StatisticTest:
    """A statistic of values tested by permutation of the pooled values; the threshold shown
    is the permutation's critical distance in the statistic's units (divided by the sd)."""

    observed = raw_distance(name, measurement.details)
    result = permutation_test(name, pooled, n, column.count, observed, draws, level)
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
