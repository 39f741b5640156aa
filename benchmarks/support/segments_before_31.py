"""The per-segment tests as issue 31 first shipped them, kept to measure "before" beside
today's in the same run (``decision_tables_detectors.py``): scipy's Kolmogorov-Smirnov with its
asymptotic p-value (exact only below 10,000 pairs) and Pearson's chi-square with levels pooled
to 5 expected rows in the batch. Not used by driftloop.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, false_discovery_control, ks_2samp

from driftloop.drift.labels import category_labels
from driftloop.drift.segments import SegmentReference, SegmentTest

MIN_EXPECTED = 5.0
BEFORE = "scipy KS (asymptotic) and Pearson chi-square per feature (issue 31, first round)"


def assess(
    references: list[SegmentReference], batch: pd.DataFrame, fdr: float, min_rows: int
) -> list[SegmentTest]:
    """Each segment with at least ``min_rows`` rows in the batch, as first shipped."""
    tests = []
    labels_of = {}
    for reference in references:
        if reference.column not in labels_of:
            labels_of[reference.column] = category_labels(batch[reference.column]).reindex(
                batch.index
            )
        part = batch[labels_of[reference.column] == reference.value]
        if len(part) < min_rows:
            continue
        p_values = [
            (name, numeric_p(values, part[name])) for name, values in reference.numeric.items()
        ] + [
            (name, categorical_p(counts, part[name]))
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
    return [
        replace(t, flagged=bool(q <= fdr), adjusted_p=float(q))
        for t, q in zip(tests, adjusted, strict=True)
    ]


def _sorted(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return np.sort(values[np.isfinite(values)]).astype(np.float32)


def numeric_p(reference: np.ndarray, series: pd.Series) -> float | None:
    current = _sorted(series)
    if current.size < 2 or reference.size < 2:
        return None
    method = "exact" if current.size * reference.size <= 10_000 else "asymp"
    return float(ks_2samp(current, reference, method=method).pvalue)


def categorical_p(reference: dict[str, int], series: pd.Series) -> float | None:
    current = category_labels(series).value_counts()
    levels = sorted(set(reference) | set(current.index.astype(str)))
    table = np.array(
        [
            [reference.get(level, 0) for level in levels],
            [int(current.get(level, 0)) for level in levels],
        ],
        dtype=float,
    )
    if table.sum(axis=1).min() == 0:
        return None
    expected = table.sum(axis=0) * table[1].sum() / table.sum()
    rare = expected < MIN_EXPECTED
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
        table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return None
    return float(chi2_contingency(table, correction=False).pvalue)
