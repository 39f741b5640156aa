"""One reference column as every statistic sees it: the type the statistics, the calibration
and the profile share, so that none of them has to import another for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from driftloop.drift.calibration import NullDistribution

NUMERIC, CATEGORICAL = "numeric", "categorical"

KURTOSIS_POINTS = 20_000
"""Sorted values the kurtosis is estimated from (evenly spaced, the maximum included): one
estimate stays O(20,000) however large the reference."""


@dataclass
class ColumnProfile:
    """What the statistics need of one reference column."""

    name: str
    kind: str
    count: int
    missing_share: float
    # numeric columns
    mean: float = float("nan")
    std: float = float("nan")
    minimum: float = float("nan")
    maximum: float = float("nan")
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    exact: bool = True
    wasserstein_error_bound: float = 0.0
    bin_edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    # numeric: probability per bin; categorical: per level, then one bin for unseen levels
    probabilities: np.ndarray = field(default_factory=lambda: np.empty(0))
    levels: list[str] = field(default_factory=list)
    # per statistic: scaled draws under no drift (see driftloop.drift.calibration)
    nulls: dict[str, NullDistribution] = field(default_factory=dict)

    @cached_property
    def excess_kurtosis(self) -> float:
        """The kept values' excess kurtosis (0 for a normal, 10 for a lognormal of sigma 0.6),
        which decides whether a column is tested by permutation. Computed once per loaded
        profile, not per check: every check of every column reads it. A reference of more
        than :data:`KURTOSIS_POINTS` (sorted) values is read at evenly spaced ranks, its
        largest and smallest values among them."""
        values = self.values
        if values.size > KURTOSIS_POINTS:
            values = values[np.linspace(0, values.size - 1, KURTOSIS_POINTS).astype(np.int64)]
        centred = (values - values.mean()) / self.std
        return float(np.mean(centred**4) - 3.0)

    @cached_property
    def distinct_count(self) -> int:
        """How many distinct values the kept (sorted) reference holds: a column of few (flags,
        ratings, small counts) is tested by its exact split at every size
        (``driftloop.drift.permutation``). Once per loaded profile, like the kurtosis."""
        values = self.values
        return int(np.count_nonzero(values[1:] != values[:-1]) + 1) if values.size else 0

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value: numeric by the reference edges, categorical by level."""
        if self.kind == NUMERIC:
            return np.searchsorted(self.bin_edges, values, side="right")
        lookup = {level: i for i, level in enumerate(self.levels)}
        unseen = len(self.levels)
        return np.fromiter(
            (lookup.get(v, unseen) for v in values), dtype=np.int64, count=len(values)
        )

    def histogram(self, values: np.ndarray, assume_sorted: bool = False) -> np.ndarray:
        """Counts of ``values`` in the profile's bins (same length as ``probabilities``).

        Sorted numeric values are counted by bisecting at the edges, without a per-value index.
        """
        if self.kind == NUMERIC and assume_sorted:
            below = np.searchsorted(values, self.bin_edges, side="left")
            return np.diff(below, prepend=0, append=len(values)).astype(float)
        return np.bincount(self.bin_of(values), minlength=len(self.probabilities)).astype(float)

    def level_counts(self, label_counts: dict[str, int]) -> np.ndarray:
        """Counts per reference level, then one count per label the reference lacks (in the
        order met): what the categorical test needs to see each new level on its own."""
        lookup = {level: i for i, level in enumerate(self.levels)}
        seen = np.zeros(len(self.levels))
        unseen = []
        for label, count in label_counts.items():
            if label in lookup:
                seen[lookup[label]] += count
            elif count:
                unseen.append(count)
        return np.concatenate((seen, np.asarray(unseen, dtype=float)))

    def level_histogram(self, label_counts: dict[str, int]) -> np.ndarray:
        """Counts per bin of a categorical column from counts per label (see category_counts)."""
        lookup = {level: i for i, level in enumerate(self.levels)}
        counts = np.zeros(len(self.probabilities))
        for label, count in label_counts.items():
            counts[lookup.get(label, len(self.levels))] += count
        return counts
