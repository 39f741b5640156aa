"""Mergeable summaries of a batch too large to hold: what each statistic needs, read in chunks.

A batch above ``drift.exact_batch_max`` rows is never held whole (``driftloop.drift.streaming``
reads it by row group); each chunk becomes a summary per column, and summaries of chunks are
merged by addition, so the order and size of chunks do not matter. Per column:

- numeric: the count of finite values and of missing ones (null, NaN and infinite count as
  missing, as on the exact path), the mean and the sum of squared deviations (merged by Chan's
  formula: exact up to float rounding, so the mean shift needs no approximation), the minimum and
  maximum, and a fine histogram with the count, the sum, the minimum and the maximum of the values
  in each bin. The bins' edges come from the reference: :data:`SKETCH_BINS` of its quantiles,
  widening edges past its ends and its Jensen-Shannon edges, so the Jensen-Shannon counts are
  exact sums of fine bins;
- categorical: counts per label, summed over row groups by label (a row group's dictionary codes
  are counted first, then its few distinct values labelled), never one Python string per row.

**Wasserstein on a sketch.** The batch is stood in for by its fine histogram with each bin's mass
at the bin's mean. Moving every value of a bin to the bin's mean moves probability mass by at
most the mean absolute deviation of the bin, and values in ``[a, b]`` (the bin's own minimum and
maximum) with mean ``m`` have a mean absolute deviation of at most ``2 (m - a)(b - m) / (b - a)``
(all the mass at the two ends is the worst case). So ``W1(sketch, batch) <= bound = sum_i p_i *
2 (m_i - a_i)(b_i - m_i) / (b_i - a_i)`` (``p_i`` the bin's share; 0 for a bin of one value),
and by the triangle inequality the Wasserstein distance of the reference to the sketch is within
``bound`` of its distance to the batch. The bound is
deterministic, computed from the batch's own summary, and reported per column; the engine
flags only when the value minus the bound still crosses the calibrated threshold, so the false-
alarm rate stays at most its level (power is what the bound costs).

A fixed histogram on reference edges was chosen over a quantile sketch such as KLL
(``datasketches``): KLL's rank error is probabilistic and turns into a Wasserstein bound only
through the value range, while this bound is proven, per batch and usually far smaller; the
histogram is also exact for the binned statistic, and adds no dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from driftloop.drift.calibration import sorted_quantiles
from driftloop.drift.column import ColumnProfile

SKETCH_BINS = 65_536
"""Reference quantiles used as fine bin edges: the finer, the smaller the Wasserstein bound
(at most about ``range / (2 * SKETCH_BINS)`` in the body of a distribution) and the slower each
value's bin lookup (a binary search over the edges); 4 arrays of this length per column."""


TAIL_EDGES, TAIL_GROWTH = 4_096, 1.005
"""Edges beyond the reference's range on each side: the first as fine as the quantile edges'
average spacing, each next one 0.5% wider, reaching ~7e8 spacings out. A batch that moved past
the reference (the drift that matters most) still lands in narrow bins, so its bound stays
small instead of one wide bin from the reference's end to the batch's."""


def fine_edges(column: ColumnProfile) -> np.ndarray:
    """The fine bin edges of a numeric reference column: its quantiles, its Jensen-Shannon
    edges and widening edges past both ends, sorted and unique (values fall in
    ``[edge[i-1], edge[i])`` as in the profile)."""
    if column.values.size == 0:
        return np.asarray(column.bin_edges, dtype=float)
    levels = np.linspace(0.0, 1.0, SKETCH_BINS + 1)
    quantiles = sorted_quantiles(column.values, levels)
    low, high = float(quantiles[0]), float(quantiles[-1])
    step = (high - low) / SKETCH_BINS or max(abs(low), 1.0) / SKETCH_BINS
    reach = step * np.cumsum(TAIL_GROWTH ** np.arange(TAIL_EDGES))
    return np.unique(np.concatenate((low - reach, quantiles, column.bin_edges, high + reach)))


@dataclass
class NumericSummary:
    """A numeric column's mergeable summary (see the module's docstring)."""

    edges: np.ndarray
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf
    bin_counts: np.ndarray = field(default_factory=lambda: np.empty(0))
    bin_sums: np.ndarray = field(default_factory=lambda: np.empty(0))
    bin_min: np.ndarray = field(default_factory=lambda: np.empty(0))
    bin_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        if self.bin_counts.size == 0:
            size = self.edges.size + 1
            self.bin_counts = np.zeros(size, dtype=np.int64)
            self.bin_sums = np.zeros(size)
            self.bin_min, self.bin_max = np.full(size, np.inf), np.full(size, -np.inf)

    def add(self, raw: np.ndarray) -> None:
        """Fold in one chunk of values (float64; non-finite ones count as missing)."""
        finite = raw[np.isfinite(raw)]
        self.missing += raw.size - finite.size
        if finite.size == 0:
            return
        n, mean = finite.size, float(np.mean(finite))
        m2 = float(np.sum(np.square(finite - mean)))
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total  # Chan et al.'s pairwise update
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.minimum = min(self.minimum, float(finite.min()))
        self.maximum = max(self.maximum, float(finite.max()))
        bins = np.searchsorted(self.edges, finite, side="right")
        self.bin_counts += np.bincount(bins, minlength=self.bin_counts.size)
        self.bin_sums += np.bincount(bins, weights=finite, minlength=self.bin_sums.size)
        np.minimum.at(self.bin_min, bins, finite)
        np.maximum.at(self.bin_max, bins, finite)

    def merge(self, other: NumericSummary) -> None:
        """Add another summary on the same edges (another chunk or file part)."""
        if other.count:
            total = self.count + other.count
            delta = other.mean - self.mean
            self.mean += delta * other.count / total
            self.m2 += other.m2 + delta * delta * self.count * other.count / total
            self.count = total
            self.minimum = min(self.minimum, other.minimum)
            self.maximum = max(self.maximum, other.maximum)
            self.bin_counts += other.bin_counts
            self.bin_sums += other.bin_sums
            np.minimum(self.bin_min, other.bin_min, out=self.bin_min)
            np.maximum(self.bin_max, other.bin_max, out=self.bin_max)
        self.missing += other.missing

    def histogram(self, coarse_edges: np.ndarray) -> np.ndarray:
        """Counts in the profile's bins, summed from the fine bins (exact: the coarse edges are
        fine edges)."""
        starts = np.searchsorted(self.edges, coarse_edges, side="left") + 1
        return np.add.reduceat(self.bin_counts, np.concatenate(([0], starts))).astype(float)

    def support(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The stand-in for the batch: bin means and their counts (non-empty bins), and the
        Wasserstein error bound of standing in (see the module's docstring)."""
        occupied = np.flatnonzero(self.bin_counts)
        counts = self.bin_counts[occupied].astype(float)
        means = self.bin_sums[occupied] / counts
        lower, upper = self.bin_min[occupied], self.bin_max[occupied]
        means = np.clip(means, lower, upper)  # rounding of the sums must not leave the bin
        width = upper - lower
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.where(width > 0, 2.0 * (means - lower) * (upper - means) / width, 0.0)
        bound = float(np.sum(counts * spread) / max(counts.sum(), 1.0))
        return means, counts, bound


@dataclass
class CategoricalSummary:
    """A categorical column's counts per label, and its missing values."""

    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def add_counts(self, label_counts: dict[str, int], missing: int) -> None:
        for label, count in label_counts.items():
            self.counts[label] = self.counts.get(label, 0) + count
        self.missing += missing

    def merge(self, other: CategoricalSummary) -> None:
        self.add_counts(other.counts, other.missing)


ColumnSummary = NumericSummary | CategoricalSummary


@dataclass
class BatchSummary:
    """A whole batch as mergeable per-column summaries, and its number of rows."""

    rows: int
    columns: dict[str, ColumnSummary]
