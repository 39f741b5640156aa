"""Calibrated thresholds: what each statistic looks like under "no drift", per batch size.

A fixed threshold (mean shift 0.5, say) means different things at 50 rows and at a million: the
noise of a statistic under no drift shrinks like ``sqrt(1/n + 1/N)`` (n batch values, N reference
values) and depends on the column's shape (heavy tails, ties, few levels). So, once per reference
profile, this module draws the statistic's *null distribution*: many pairs of (batch of n,
reference of N) drawn from the reference itself, standing in for the unknown distribution the
reference came from. Two samples are drawn, not one: a batch resampled from the reference and
compared with that same reference would see a variance of about ``1/n - 1/N`` instead of the
true ``1/n + 1/N`` and would raise false alarms.

Each draw is stored *scaled*, ``S = T / sqrt(1/n + 1/N)``, whose distribution hardly moves with
n once n is moderate, and is known in the limit:

- mean shift: S tends to ``|Z|``, Z standard normal;
- Wasserstein: S tends to ``integral |B(F(x))| dx / sd`` with B a Brownian bridge (del Barrio,
  Giné and Matrán, 1999), drawn here on the reference's quantile function;
- Jensen-Shannon on k bins: S tends to ``sqrt(chi2(k - 1) / (8 ln 2))`` (the divergence's second
  order term is Pearson's chi-square over 8).

Small batch sizes, where skewness and ties matter, are resampled exactly (``SMALL_SIZES`` for
the statistics of values, a longer ladder for the binned ones, whose draws are multinomial and
cost nothing per row); the limit closes the ladder at n = infinity. Between rungs the sorted
draws (quantile functions) are interpolated linearly in ``1/sqrt(n)``, the order of the first
correction to the limit. A check then needs no resampling: it scales its observed value, reads
the p-value off the interpolated draws, and flags at the configured false-alarm rate.

The p-value is ``(1 + #{draws >= observed}) / (draws + 1)``; flagging when it is at most the
level keeps the expected false-alarm rate at or below that level whatever the number of draws,
as long as the reference stands in well for its population.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

SMALL_SIZES = (10, 30, 100, 300)
"""Batch sizes resampled for the statistics of values (mean shift, Wasserstein)."""

BINNED_SIZES = (10, 30, 100, 300, 1_000, 10_000)
"""Batch sizes resampled for binned statistics (multinomial draws: free at any size)."""

INFINITE = 0
"""The rung for n = infinity: the statistic's limit distribution."""

BRIDGE_LEVELS = 200
"""Quantile levels on which the Brownian bridge of the Wasserstein limit is drawn."""

DRAW_BLOCK = 250
"""Draws made at once: bounds the temporary arrays to a few times 250 x 300 values."""


@dataclass(frozen=True)
class NullDistribution:
    """Sorted draws of a scaled statistic under no drift, one row per batch size (rung).

    ``sizes`` are ascending batch sizes with :data:`INFINITE` last; ``draws`` has one sorted row
    of scaled values per size.
    """

    sizes: tuple[int, ...]
    draws: np.ndarray

    def row(self, n: int) -> np.ndarray:
        """The scaled null draws at batch size ``n``: interpolated in 1/sqrt(n) between rungs."""
        finite = [s for s in self.sizes if s != INFINITE]
        if n <= finite[0]:
            return self.draws[0]
        position = [1.0 / math.sqrt(s) for s in finite]
        if INFINITE in self.sizes:
            position.append(0.0)
        target = 1.0 / math.sqrt(n)
        for index in range(len(position) - 1):
            hi, lo = position[index], position[index + 1]
            if lo <= target <= hi:
                weight = (hi - target) / (hi - lo)
                return (1.0 - weight) * self.draws[index] + weight * self.draws[index + 1]
        return self.draws[len(position) - 1]

    def p_value(self, scaled: float, n: int) -> float:
        """Share of null draws at least as large as ``scaled`` (with the observation counted)."""
        row = self.row(n)
        at_least = row.size - np.searchsorted(row, scaled, side="left")
        return float((1 + at_least) / (row.size + 1))

    def critical(self, level: float, n: int) -> float:
        """The scaled value a statistic must exceed to have p-value at most ``level``."""
        row = self.row(n)
        rank = math.ceil((row.size + 1) * (1.0 - level))  # 1-based order statistic
        return float(row[rank - 1]) if 1 <= rank <= row.size else math.inf


def second_stage(p_value: float, draws: int, more: int) -> bool:
    """Whether a permutation test drawn in two stages draws its second: ``more`` splits (more
    than the first ``draws``) only when none of the first reached the observed value, so that
    its p-value is the least the first stage can give, ``1 / (draws + 1)``.

    Why: a bar finer than ``draws`` resolve (every detector allowed to call drift: 3,999 draws)
    would cost every clean column the larger null, though all but about 1 in ``draws + 1`` stop
    at the first. Valid: a p-value below ``1 / (draws + 1)`` is only ever the second stage's
    own, itself valid; any at or above it implies the first stage's, valid too, at most that.
    """
    return more > draws and p_value <= (1 + 1e-9) / (draws + 1)


def sorted_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear) of values already sorted: no partition, which
    numpy runs once per level and which took minutes for 100,000 levels of 200,000 values."""
    position = np.clip(levels, 0.0, 1.0) * (values.size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, values.size - 1)
    return values[lower] + (position - lower) * (values[upper] - values[lower])


def scale(n: int, reference_count: int) -> float:
    """The null noise scale of a two-sample statistic: sqrt(1/n + 1/N)."""
    return math.sqrt(1.0 / n + 1.0 / max(reference_count, 1))


def _sorted_uniforms(rng: np.random.Generator, rows: int, size: int) -> np.ndarray:
    """``rows`` sorted samples of ``size`` uniforms, from exponential spacings (no sort)."""
    spacings = rng.standard_exponential((rows, size + 1))
    np.cumsum(spacings, axis=1, out=spacings)
    spacings[:, :size] /= spacings[:, size:]
    return spacings[:, :size]


def sorted_indices(size: int, rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``rows`` sorted samples of ``n`` indices into ``size`` values, drawn with replacement."""
    index = (_sorted_uniforms(rng, rows, n) * size).astype(np.int64)
    np.minimum(index, size - 1, out=index)
    return index


def mean_shift_null(values: np.ndarray, std: float, index: np.ndarray) -> np.ndarray:
    """|mean(batch) - mean(reference)| / sd per row of resampled batches (indices)."""
    return _ratio(np.abs(values[index].mean(axis=1) - values.mean()), std)


def wasserstein_null(values: np.ndarray, std: float, index: np.ndarray) -> np.ndarray:
    """W1(batch, reference) / sd per row of resampled batches, in closed form.

    With H(t) the integral of the reference's empirical CDF F up to t (piecewise linear,
    tabulated at the sorted reference values), the integral of |c - F| between two batch
    values a <= b, where the batch's CDF is the constant c, is
    ``c (x - a) - (H(x) - H(a)) + (H(b) - H(x)) - c (b - x)`` with x where F reaches c,
    clipped to [a, b]. Batch values are reference values, so every H is a table look-up.
    """
    size = values.size
    # H at each sorted reference value (between values j and j + 1, F is (j + 1) / size)
    h = np.concatenate(([0.0], np.cumsum(np.arange(1, size) / size * np.diff(values))))
    n = index.shape[1]
    levels = np.arange(1, n) / n
    crossing = np.minimum(np.ceil(levels * size).astype(np.int64) - 1, size - 1)
    # one gather per table; a row's consecutive values are its intervals' ends (views)
    batch, h_batch = values[index], h[index]
    a, b, h_a, h_b = batch[:, :-1], batch[:, 1:], h_batch[:, :-1], h_batch[:, 1:]
    # x clipped to [a, b]; H is non-decreasing in the index, so H there is H(x) clipped alike
    at = np.clip(values[crossing], a, b)
    h_at = np.clip(h[crossing], h_a, h_b)
    # the middle terms summed per row, regrouped: levels x (2 at - a - b) + H(a) + H(b) - 2 H(at)
    middle = (2.0 * at - a - b) @ levels + h_a.sum(axis=1) + h_b.sum(axis=1) - 2.0 * h_at.sum(1)
    first = h_batch[:, 0]  # below the batch: the integral of F
    last = (values[-1] - batch[:, -1]) - (h[-1] - h_batch[:, -1])  # above: of 1 - F
    return _ratio(first + middle + last, std)


def _ratio(distance: np.ndarray, spread: float) -> np.ndarray:
    """distance / spread, with a constant reference (spread 0) infinite unless nothing moved."""
    if spread > 0:
        return distance / spread
    return np.where(distance == 0, 0.0, np.inf)


ValueNull = Callable[[np.ndarray, float, np.ndarray], np.ndarray]
"""Statistic per row of resampled batches, given as sorted indices (rows x n) into the sorted
reference values."""

VALUE_NULLS: dict[str, ValueNull] = {
    "mean_shift": mean_shift_null,
    "wasserstein": wasserstein_null,
}


def value_null(
    name: str,
    values: np.ndarray,
    std: float,
    reference_count: int,
    draws: int,
    rng: np.random.Generator,
    limit: np.ndarray,
) -> NullDistribution:
    """Resample a statistic of values at :data:`SMALL_SIZES`; ``limit`` closes the ladder.

    Batches are drawn with replacement from the reference and compared with the reference
    itself, so their noise is 1/n; the draws are scaled by sqrt(1/n), and a check scales them
    back by sqrt(1/n + 1/N) to add the reference's own noise. At the small sizes resampled here
    the batch's noise dominates and shapes the tail (skewness, ties); at large sizes the limit,
    which is exact for two samples, takes over.
    """
    statistic = VALUE_NULLS[name]
    rows = []
    for n in SMALL_SIZES:
        parts = [
            statistic(values, std, sorted_indices(values.size, rng, min(DRAW_BLOCK, draws - at), n))
            for at in range(0, draws, DRAW_BLOCK)
        ]
        rows.append(np.sort(np.concatenate(parts)) * math.sqrt(n))
    rows.append(np.sort(limit))
    return NullDistribution((*SMALL_SIZES, INFINITE), np.vstack(rows))


def mean_shift_limit(draws: int) -> np.ndarray:
    """|Z| at evenly spaced levels: the exact limit, without sampling noise."""
    normal = NormalDist()
    levels = (np.arange(draws) + 0.5) / draws
    return np.array([abs(normal.inv_cdf(0.5 + level / 2.0)) for level in levels])


def bridge_levels(count: int) -> np.ndarray:
    """Where the Brownian bridge is drawn: ``BRIDGE_LEVELS`` even steps, refined geometrically
    toward 0 and 1 down to about ``1 / (2 count)`` (``count`` reference values)."""
    even = np.arange(1, BRIDGE_LEVELS) / BRIDGE_LEVELS
    depth = max(0, math.ceil(math.log2(max(2.0 * count / BRIDGE_LEVELS, 1.0))))
    tail = 0.5 ** np.arange(1, depth + 1) / BRIDGE_LEVELS
    return np.concatenate((tail[::-1], even, 1.0 - tail))


def wasserstein_limit(
    values: np.ndarray, std: float, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws of integral |B(t)| dQ(t) / sd, B a Brownian bridge, Q the reference's quantiles.

    The integral runs over every quantile step from the reference's minimum to its maximum:
    each level carries the steps of Q up to the midpoints with its neighbours (0 and 1 at the
    ends). With heavy tails (lognormal sigma 2, Pareto 2.5) the outer quantiles hold much of
    the statistic's noise; an even grid that stopped at 1/400 from each end drew a limit too
    narrow, and large batches were flagged far above the level (issue 26, item 3).
    """
    if not std > 0:
        return np.zeros(draws)
    levels = bridge_levels(values.size)
    edges = np.concatenate(([0.0], (levels[1:] + levels[:-1]) / 2.0, [1.0]))
    steps = np.diff(sorted_quantiles(values, edges))
    spacing = np.sqrt(np.diff(np.concatenate(([0.0], levels, [1.0]))))
    out = np.empty(draws)
    for start in range(0, draws, DRAW_BLOCK):
        block = min(DRAW_BLOCK, draws - start)
        walk = np.cumsum(rng.standard_normal((block, spacing.size)) * spacing, axis=1)
        bridge = walk[:, :-1] - levels * walk[:, -1:]
        out[start : start + block] = np.abs(bridge) @ steps
    return out / std


def binned_null(
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray],
    probabilities: np.ndarray,
    reference_count: int,
    draws: int,
    rng: np.random.Generator,
) -> NullDistribution:
    """A distance between two multinomial histograms of the reference's bins, per batch size.

    ``distance(reference_counts, batch_counts)`` works row-wise on (draws x bins) arrays. The
    limit is the Jensen-Shannon one (chi-square over k - 1 degrees of freedom).
    """
    p = probabilities[probabilities > 0]
    p = p / p.sum()
    rows = []
    reference = rng.multinomial(reference_count, p, size=draws).astype(float)
    for n in BINNED_SIZES:
        batch = rng.multinomial(n, p, size=draws).astype(float)
        rows.append(np.sort(distance(reference, batch) / scale(n, reference_count)))
    if p.size > 1:
        limit = np.sqrt(rng.chisquare(p.size - 1, draws) / (8.0 * math.log(2.0)))
    else:  # one level: every histogram is the same
        limit = np.zeros(draws)
    rows.append(np.sort(limit))
    return NullDistribution((*BINNED_SIZES, INFINITE), np.vstack(rows))
