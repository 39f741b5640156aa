"""Drift within segments: a shift confined to one region or product line (5% of the rows) moves
the aggregate by too little to flag, yet changes the model's inputs where that segment is
served. ``drift.segment_by`` names the columns whose values are segments; each segment with
enough rows is tested on its own against the reference's rows of that segment.

Per segment and feature a two-sample test against the reference's own rows of the segment
(kept in the profile): Kolmogorov-Smirnov for numeric features, an exact conditional test per
level for categorical ones (levels with too few rows pooled). A segment's p-value is the
smallest of its features' times their number (Bonferroni); across segments the
Benjamini-Hochberg procedure holds the false-discovery rate at ``drift.segment_fdr``, which
under no drift at all is the chance that any segment is flagged.

Bonferroni reads each feature's p-value far in its tail (at ``segment_fdr`` / (features x
segments), 1e-5 for 100 features in 10 segments), where the textbook asymptotics flatter:
scipy's asymptotic Kolmogorov-Smirnov p-value is up to 20% too small there when the two sizes
share a large divisor (the statistic lives on a lattice of step 1 / lcm(n, m), and the smooth
tail leaves out the atom at the observed value), and Pearson's chi-square up to 1.5x too small
between a small batch segment and a large reference one. Both made clean batches flag a segment
more often than ``segment_fdr`` (issue 31: 1.36% at 0.01). Hence the tail one lattice step
lower and the effective size rounded down for Kolmogorov-Smirnov (at or above the exact
p-value at 595 of 600 lattice points of 24 size pairs of 200 to 2,000 rows, within 1.6% at the
other five: ``benchmarks/segment_tails.py``), and hypergeometric tails, exact given the
table's margins, for the levels.

Reported only, unless ``drift.segment_retrain``: a segment whose adjusted p-value is within the
segments' share of ``drift.false_alarm_rate`` then calls the batch drift (``calls_drift``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom, kstwo

from driftloop.drift.labels import category_labels

MIN_EXPECTED = 5.0
"""Chi-square needs about this many expected rows per cell: rarer levels are pooled."""


@dataclass(frozen=True)
class SegmentReference:
    """One segment's reference rows: sorted numeric values, categorical level counts."""

    column: str
    value: str
    rows: int
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentTest:
    """One segment of one batch against its reference rows."""

    column: str
    value: str
    rows: int
    reference_rows: int
    p_value: float  # Bonferroni over the segment's features
    features: list[tuple[str, float]]  # (feature, p-value), smallest first
    flagged: bool = False
    adjusted_p: float = 1.0  # Benjamini-Hochberg across the batch's segments

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "p_value": self.p_value,
            "adjusted_p": self.adjusted_p,
            "flagged": self.flagged,
            "features": [{"feature": f, "p_value": p} for f, p in self.features[:3]],
        }


def fit(
    frame: pd.DataFrame,
    segment_by: list[str],
    numeric: list[str],
    categorical: list[str],
    min_rows: int,
) -> list[SegmentReference]:
    """Every segment of every ``segment_by`` column with at least ``min_rows`` reference rows."""
    references = []
    for column in segment_by:
        labels = category_labels(frame[column]).reindex(frame.index)
        for value, rows in labels.groupby(labels, sort=True).groups.items():
            if len(rows) < min_rows:
                continue
            part = frame.loc[rows]
            references.append(
                SegmentReference(
                    column,
                    str(value),
                    len(part),
                    {name: _sorted(part[name]) for name in numeric if name != column},
                    {
                        name: {
                            str(k): int(v)
                            for k, v in category_labels(part[name]).value_counts().items()
                        }
                        for name in categorical
                        if name != column
                    },
                )
            )
    return references


def assess(
    references: list[SegmentReference], batch: pd.DataFrame, fdr: float, min_rows: int
) -> list[SegmentTest]:
    """Each segment with at least ``min_rows`` rows in the batch, drifted segments first."""
    tests = []
    labels_of = {}
    for reference in references:
        if reference.column not in batch.columns:
            continue
        if reference.column not in labels_of:
            labels_of[reference.column] = category_labels(batch[reference.column]).reindex(
                batch.index
            )
        part = batch[labels_of[reference.column] == reference.value]
        if len(part) < min_rows:
            continue
        p_values = [
            (name, _numeric_p(values, part[name])) for name, values in reference.numeric.items()
        ] + [
            (name, _categorical_p(counts, part[name]))
            for name, counts in reference.categorical.items()
        ]
        p_values = sorted((p for p in p_values if p[1] is not None), key=lambda item: item[1])
        if not p_values:
            continue
        combined = min(1.0, p_values[0][1] * len(p_values))
        tests.append(
            SegmentTest(
                reference.column, reference.value, len(part), reference.rows, combined, p_values
            )
        )
    if not tests:
        return []
    adjusted = false_discovery_control([t.p_value for t in tests], method="bh")
    flagged = [
        replace(t, flagged=bool(q <= fdr), adjusted_p=float(q))
        for t, q in zip(tests, adjusted, strict=True)
    ]
    return sorted(flagged, key=lambda t: (not t.flagged, t.p_value))


def calls_drift(tests: list[SegmentTest], level: float) -> bool:
    """Whether a segment is drifted at ``level`` (Benjamini-Hochberg across the segments):
    with every segment clean that happens at most ``level`` of the time (Simes), so the
    segments can take a share of the batch verdict's false-alarm budget."""
    return any(t.adjusted_p <= level for t in tests)


def _sorted(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return np.sort(values[np.isfinite(values)]).astype(np.float32)


def _numeric_p(reference: np.ndarray, series: pd.Series) -> float | None:
    current = _sorted(series)
    if current.size < 2 or reference.size < 2:
        return None
    return smirnov_p(current, reference)


def smirnov_p(current: np.ndarray, reference: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value of two sorted samples, at or above the
    exact one far into the tail: the statistic D lives on multiples of gcd(n, m) / (n m), so
    P(D >= d) is the smooth tail just above the next lattice point down, taken at the
    effective size n m / (n + m) rounded down (scipy rounds to nearest and takes the tail at d).
    Ties only make the test more conservative."""
    n, m = current.size, reference.size
    pooled = np.concatenate([current, reference])
    gap = np.abs(
        np.searchsorted(current, pooled, side="right") / n
        - np.searchsorted(reference, pooled, side="right") / m
    ).max()
    step = math.gcd(n, m) / (n * m)
    lattice = round(float(gap) / step)
    if lattice == 0:
        return 1.0
    return float(min(1.0, kstwo.sf((lattice - 1) * step, max(1, math.floor(n * m / (n + m))))))


def _categorical_p(reference: dict[str, int], series: pd.Series) -> float | None:
    current = category_labels(series).value_counts()
    levels = sorted(set(reference) | set(current.index.astype(str)))
    table = np.array(
        [
            [reference.get(level, 0) for level in levels],
            [int(current.get(level, 0)) for level in levels],
        ],
        dtype=np.int64,
    )
    if table.sum(axis=1).min() == 0:
        return None
    return level_p(table)


def level_p(table: np.ndarray) -> float | None:
    """P-value of a 2 x levels table (reference, batch) being one law: each level's batch
    count against its hypergeometric law given the margins (Fisher's exact test, two-sided by
    doubling the smaller tail), Bonferroni over the levels. Exact, so valid at any size, where
    Pearson's chi-square is not far in the tail. Levels expected fewer than ``MIN_EXPECTED``
    rows in the smaller row are pooled into one first (the margins decide, so this keeps the
    test exact) to spend the Bonferroni factor on levels that can show a change."""
    totals = table.sum(axis=0)
    expected = totals * table.sum(axis=1).min() / table.sum()
    rare = expected < MIN_EXPECTED
    if rare.any():  # pool the rare levels into one
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
        table = table[:, table.sum(axis=0) > 0]
    levels = table.shape[1]
    if levels < 2:
        return None
    rows, totals, drawn = int(table.sum()), table.sum(axis=0), int(table[1].sum())
    lower = hypergeom.cdf(table[1], rows, totals, drawn)
    upper = hypergeom.sf(table[1] - 1, rows, totals, drawn)
    tails = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    # with two levels both tests are one and the same
    return float(min(1.0, tails.min() * (1 if levels == 2 else levels)))
