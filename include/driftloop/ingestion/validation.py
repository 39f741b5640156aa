"""Validation at ingestion: what makes a batch unusable, not what makes it unusual.

Schema, types, emptiness, hard bounds and missing values are checked here. Values that are
merely rare for the reference pass on: that is drift, for the drift check to judge.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data import exceeds_rows, parquet_batches
from driftloop.task import task_of

_OTHER_SEPARATORS = (",", ";", "\t", "|")


@dataclass
class ValidationResult:
    """The verdict on one batch file: its reasons to be quarantined, and notes that are not."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    labelled: bool = False
    rows: int | None = None  # data rows checked (also when the file was read by row group)

    @property
    def ok(self) -> bool:
        return not self.reasons


def validate_file(path: Path, settings: Settings) -> ValidationResult:
    """Check one batch file against the configured schema, types, bounds and missing share."""
    result = ValidationResult()
    if path.stat().st_size == 0:
        result.reasons.append("empty file: no header and no rows")
        return result
    if exceeds_rows(path, settings.data, settings.drift.exact_batch_max):
        _validate_by_row_group(path, settings, result)
        return result
    frame = _read(path, settings, result)
    if frame is None:
        return result
    if frame.empty:
        result.reasons.append("empty file: a header but no data rows")
        return result
    _check_columns(list(frame.columns), settings, result)
    if result.reasons:
        return result
    frame = _check_values(frame, settings, result)
    result.frame = frame if result.ok else None
    return result


def _validate_by_row_group(path: Path, settings: Settings, result: ValidationResult) -> None:
    """The same checks on a Parquet batch too large to hold, one chunk at a time; the rows are
    not kept (``result.frame`` stays None). Text columns are read as Arrow dictionaries. A
    categorical target counts as numeric when its Parquet type is a number (the whole-file
    path looks at the values instead)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = settings.data
    schema = pq.read_schema(path)
    _check_columns(list(schema.names), settings, result)
    if result.reasons:
        return
    columns = [*settings.feature_columns, *([data.target] if result.labelled else [])]
    target_numeric = result.labelled and (
        not task_of(settings).categorical_target or _arrow_numeric(schema.field(data.target).type)
    )
    checks = ValueChecks(settings, columns, target_numeric)
    text = [c for c in columns if c not in checks.numeric]
    try:
        for chunk in parquet_batches(path, columns=columns, dictionary_columns=text):
            checks.add(chunk.to_pandas())
    except (OSError, pa.ArrowException) as exc:
        result.reasons.append(f"unreadable parquet file: {exc}")
        return
    checks.finish(result)


def _arrow_numeric(kind: object) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _read(path: Path, settings: Settings, result: ValidationResult) -> pd.DataFrame | None:
    data = settings.data
    if data.format == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # any parquet reader failure means an unreadable file
            result.reasons.append(f"unreadable parquet file: {exc}")
            return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        result.reasons.append(f"not UTF-8 text: {exc}")
        return None
    header = next(csv.reader(io.StringIO(text), delimiter=data.separator), [])
    if not any(name.strip() for name in header):
        result.reasons.append("empty file: no header")
        return None
    expected = len(settings.feature_columns) + 1
    if len(header) == 1 and expected > 1:
        found = [sep for sep in _OTHER_SEPARATORS if sep != data.separator and sep in header[0]]
        hint = f"; the header looks separated by {found[0]!r}" if found else ""
        result.reasons.append(
            f"wrong separator: expected columns separated by {data.separator!r}{hint}"
        )
        return None
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        result.reasons.append(f"duplicate column name(s) in the header: {duplicated}")
        return None
    try:
        return pd.read_csv(io.StringIO(text), sep=data.separator, dtype=str, keep_default_na=True)
    except pd.errors.ParserError as exc:
        result.reasons.append(f"malformed rows: {exc}".strip())
        return None


def _check_columns(names: list[str], settings: Settings, result: ValidationResult) -> None:
    features, target = settings.feature_columns, settings.data.target
    missing = [c for c in features if c not in names]
    if missing:
        result.reasons.append(f"missing column(s): {missing}")
    extra = [c for c in names if c not in features and c != target]
    if extra:
        result.notes.append(f"ignored extra column(s): {extra}")
    result.labelled = target in names
    if not result.labelled:
        result.notes.append(f"no {target!r} column: an unlabelled batch")


def _check_values(
    frame: pd.DataFrame, settings: Settings, result: ValidationResult
) -> pd.DataFrame:
    data = settings.data
    columns = [*settings.feature_columns, *([data.target] if result.labelled else [])]
    target_numeric = result.labelled and (
        not task_of(settings).categorical_target or _all_numeric(frame[data.target])
    )
    checks = ValueChecks(settings, columns, target_numeric)
    frame = checks.add(frame[columns].copy())
    checks.finish(result)
    return frame


@dataclass
class _First:
    """How many values broke a rule, and the first of them (its data row, 1-based; its text)."""

    count: int = 0
    row: int = 0
    text: str = ""

    def add(self, broken: np.ndarray, offset: int, values: pd.Series | None = None) -> None:
        hits = int(broken.sum())
        if hits and not self.count:
            first = int(np.flatnonzero(broken)[0])
            self.row = offset + first + 1
            self.text = "" if values is None else repr(values.iloc[first])
        self.count += hits


class ValueChecks:
    """The value checks of a batch (numbers, infinities, missing share, bounds), accumulated
    chunk by chunk, so a file read whole and one read by row group get the same sentences."""

    def __init__(self, settings: Settings, columns: list[str], target_numeric: bool) -> None:
        data = settings.data
        self.settings, self.columns, self.rows = settings, columns, 0
        self.numeric = [c for c in settings.feature_columns if c not in data.categorical_features]
        if target_numeric:
            self.numeric.append(data.target)
        self.not_numbers = {c: _First() for c in self.numeric}
        self.infinite = {c: _First() for c in self.numeric}
        self.missing = dict.fromkeys(columns, 0)
        self.bounded = [
            (column, bounds)
            for column, bounds in data.bounds.items()
            if column in columns and column in self.numeric
        ]
        self.below = {c: _First() for c, _ in self.bounded}
        self.above = {c: _First() for c, _ in self.bounded}

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check one chunk (the next rows, in order); return it with numeric columns as numbers."""
        offset = self.rows
        for column in self.numeric:
            values = frame[column]
            numbers = pd.to_numeric(values, errors="coerce")
            broken = (values.notna() & numbers.isna()).to_numpy()
            self.not_numbers[column].add(broken, offset, values)
            self.infinite[column].add(np.isinf(numbers.to_numpy(dtype=float)), offset)
            frame[column] = numbers
        for column in self.columns:
            self.missing[column] += int(frame[column].isna().sum())
        for column, bounds in self.bounded:
            values = frame[column]
            if bounds.min is not None:
                self.below[column].add((values < bounds.min).to_numpy(), offset, values)
            if bounds.max is not None:
                self.above[column].add((values > bounds.max).to_numpy(), offset, values)
        self.rows += len(frame)
        return frame

    def finish(self, result: ValidationResult) -> None:
        """Write the reasons and notes of every chunk seen, in the order of the checks."""
        data = self.settings.data
        for column in self.numeric:
            bad, inf = self.not_numbers[column], self.infinite[column]
            if bad.count:
                result.reasons.append(
                    f"column {column!r}: {bad.count} value(s) that are not numbers "
                    f"(first {bad.text} in data row {bad.row})"
                )
            if inf.count:
                result.reasons.append(
                    f"column {column!r}: {inf.count} infinite value(s) "
                    f"(first in data row {inf.row})"
                )
        for column in self.columns:
            share = self.missing[column] / max(self.rows, 1)
            if share > data.max_missing_share:
                result.reasons.append(
                    f"column {column!r}: {share:.0%} missing, above the limit of "
                    f"{data.max_missing_share:.0%}"
                )
        if self.missing.get(data.target):
            n_unlabelled = self.missing[data.target]
            result.notes.append(f"{n_unlabelled} row(s) without a {data.target!r} label")
        for column, bounds in self.bounded:
            for limit, first, word in (
                (bounds.min, self.below[column], "below the minimum"),
                (bounds.max, self.above[column], "above the maximum"),
            ):
                if first.count:
                    result.reasons.append(
                        f"column {column!r}: {first.count} value(s) {word} {limit:g} "
                        f"(first {first.text} in data row {first.row})"
                    )
        result.rows = self.rows


def _all_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()
