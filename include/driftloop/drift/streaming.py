"""Drift checks of Parquet batches too large to hold: read by row group, summarised, tested.

The batch is read once, in chunks (:func:`driftloop.data.parquet_batches`), each chunk folded
into the mergeable per-column summaries of :mod:`driftloop.drift.sketch`; only those are kept,
so memory follows the chunk and the reference, not the batch. Categorical columns are read as
Arrow dictionaries and counted by code, then by each chunk's few distinct values (dictionaries
differ between row groups, so counts are merged by label). The summaries are then tested like
an exact batch (:func:`driftloop.drift.engine.judge_column`), each statistic from its
``sketched`` form with its error bound.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftloop.config import DriftSettings
from driftloop.data import parquet_batches
from driftloop.drift.column import NUMERIC, ColumnProfile
from driftloop.drift.engine import (
    ColumnDrift,
    DriftError,
    DriftVerdict,
    fold_unseen,
    judge_column,
    verdict_of,
)
from driftloop.drift.labels import category_labels
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.sketch import (
    BatchSummary,
    CategoricalSummary,
    ColumnSummary,
    NumericSummary,
    fine_edges,
)
from driftloop.drift.statistics import STATISTICS, Measurement
from driftloop.drift.threads import one_blas_thread

# Arrow types cast to float64 directly; any other (text) is parsed as the exact path parses it
_CASTABLE = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)


def numbers(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow column as float64 (nulls as NaN); text that is not a number becomes NaN, as
    ``pd.to_numeric(errors="coerce")`` makes it on the exact path."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if any(is_kind(kind) for is_kind in _CASTABLE):
        return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    return pd.to_numeric(array.to_pandas(), errors="coerce").to_numpy(dtype=float)


def label_counts(array: pa.Array | pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """Counts per label of one chunk of a categorical column, and its missing values.

    Arrow counts the values (by dictionary code when dictionary encoded); only the distinct
    values become Python objects, labelled as the exact path labels them
    (:func:`driftloop.drift.labels.category_labels`).
    """
    counted = pc.value_counts(array)
    values = counted.field("values")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    keys, counts = values.to_pylist(), counted.field("counts").to_numpy()
    present = [i for i, key in enumerate(keys) if key is not None and not _is_nan(key)]
    totals: dict[str, int] = {}
    if present:
        labels = category_labels(pd.Series([keys[i] for i in present]))
        for label, i in zip(labels, present, strict=True):
            totals[label] = totals.get(label, 0) + int(counts[i])
    return totals, len(array) - sum(totals.values())


def _is_nan(key: object) -> bool:
    return isinstance(key, float) and math.isnan(key)


def summarise_parquet(path: Path, profile: ReferenceProfile, columns: list[str]) -> BatchSummary:
    """One pass over the file's ``columns`` (all profiled) into their summaries."""
    categorical = [c for c in columns if profile.columns[c].kind != NUMERIC]
    summaries: dict[str, ColumnSummary] = {
        name: CategoricalSummary()
        if name in categorical
        else NumericSummary(fine_edges(profile.columns[name]))
        for name in columns
    }
    rows = 0
    for chunk in parquet_batches(path, columns=columns, dictionary_columns=categorical):
        rows += chunk.num_rows
        for name, summary in summaries.items():
            array = chunk.column(name)
            if isinstance(summary, NumericSummary):
                summary.add(numbers(array))
            else:
                summary.add_counts(*label_counts(array))
    return BatchSummary(rows, summaries)


def check_drift_streamed(
    profile: ReferenceProfile, path: Path, settings: DriftSettings
) -> DriftVerdict:
    """Test a Parquet batch against ``profile`` by row group (see the module's docstring)."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    missing = [name for name in profile.features if name not in names]
    if missing:
        raise DriftError(f"the batch lacks profiled column(s) {missing}")
    unsketched = [n for n in settings.statistics if STATISTICS[n].sketched is None]
    if unsketched:
        raise DriftError(
            f"statistic(s) {unsketched} cannot be computed on a batch above "
            f"drift.exact_batch_max={settings.exact_batch_max} rows"
        )
    target = profile.target if profile.target in names else None
    columns = [*profile.features, *([target] if target else [])]
    try:
        summary = summarise_parquet(path, profile, columns)
    except pa.ArrowException as exc:  # e.g. a column of a type that is not a number
        raise DriftError(f"the batch cannot be read by row group: {exc}") from exc
    return check_summary(profile, summary, settings)


@one_blas_thread
def check_summary(
    profile: ReferenceProfile, summary: BatchSummary, settings: DriftSettings
) -> DriftVerdict:
    """Test a batch's summaries against ``profile``: every profiled feature and the target
    that the summary holds."""
    if summary.rows == 0:
        raise DriftError("the batch is empty: there is nothing to test for drift")
    target = profile.target if profile.target in summary.columns else None
    if not settings.fixed:
        profile.calibrate(settings.statistics, settings.draws)
    features = [
        _summary_drift(profile.columns[n], summary.columns[n], summary.rows, settings)
        for n in profile.features
    ]
    target_drift = (
        _summary_drift(profile.columns[target], summary.columns[target], summary.rows, settings)
        if target
        else None
    )
    return verdict_of(features, target_drift, summary.rows, settings, sketched=True)


def _summary_drift(
    column: ColumnProfile, summary: ColumnSummary, rows: int, settings: DriftSettings
) -> ColumnDrift:
    if isinstance(summary, CategoricalSummary):
        current = column.level_counts(summary.counts)
        return judge_column(
            column,
            summary.count,
            rows,
            fold_unseen(column, current),
            lambda name: STATISTICS[name].compute(column, current),
            settings,
            bounds={},
            level_counts=current,
        )
    names = [n for n in settings.statistics if column.kind in STATISTICS[n].column_kinds]
    measured: dict[str, tuple[Measurement, float]] = {}
    if summary.count and column.count:  # else judge_column tests nothing
        measured = {name: STATISTICS[name].sketched(column, summary) for name in names}
    counts = summary.histogram(column.bin_edges) if column.count else np.zeros(1)
    return judge_column(
        column,
        summary.count,
        rows,
        counts,
        lambda name: measured[name][0],
        settings,
        bounds={name: bound for name, (_, bound) in measured.items()},
    )
