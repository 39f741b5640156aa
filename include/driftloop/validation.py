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
from driftloop.task import task_of

_OTHER_SEPARATORS = (",", ";", "\t", "|")


@dataclass
class ValidationResult:
    """The verdict on one batch file: its reasons to be quarantined, and notes that are not."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    labelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.reasons


def validate_file(path: Path, settings: Settings) -> ValidationResult:
    """Check one batch file against the configured schema, types, bounds and missing share."""
    result = ValidationResult()
    if path.stat().st_size == 0:
        result.reasons.append("empty file: no header and no rows")
        return result
    frame = _read(path, settings, result)
    if frame is None:
        return result
    if frame.empty:
        result.reasons.append("empty file: a header but no data rows")
        return result
    _check_columns(frame, settings, result)
    if result.reasons:
        return result
    frame = _check_values(frame, settings, result)
    result.frame = frame if result.ok else None
    return result


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


def _check_columns(frame: pd.DataFrame, settings: Settings, result: ValidationResult) -> None:
    features, target = settings.feature_columns, settings.data.target
    missing = [c for c in features if c not in frame.columns]
    if missing:
        result.reasons.append(f"missing column(s): {missing}")
    extra = [c for c in frame.columns if c not in features and c != target]
    if extra:
        result.notes.append(f"ignored extra column(s): {extra}")
    result.labelled = target in frame.columns
    if not result.labelled:
        result.notes.append(f"no {target!r} column: an unlabelled batch")


def _check_values(
    frame: pd.DataFrame, settings: Settings, result: ValidationResult
) -> pd.DataFrame:
    data = settings.data
    columns = [*settings.feature_columns, *([data.target] if result.labelled else [])]
    frame = frame[columns].copy()
    numeric = [c for c in settings.feature_columns if c not in data.categorical_features]
    if result.labelled and (
        not task_of(settings).categorical_target or _all_numeric(frame[data.target])
    ):
        numeric.append(data.target)
    for column in numeric:
        frame[column] = _to_number(frame[column], column, result)
    for column in columns:
        share = float(frame[column].isna().mean())
        if share > data.max_missing_share:
            result.reasons.append(
                f"column {column!r}: {share:.0%} missing, above the limit of "
                f"{data.max_missing_share:.0%}"
            )
    if result.labelled and frame[data.target].isna().any():
        n_unlabelled = int(frame[data.target].isna().sum())
        result.notes.append(f"{n_unlabelled} row(s) without a {data.target!r} label")
    for column, bounds in data.bounds.items():
        if column not in frame.columns or column not in numeric:
            continue
        values = frame[column]
        for limit, broken, word in (
            (
                bounds.min,
                values < bounds.min if bounds.min is not None else None,
                "below the minimum",
            ),
            (
                bounds.max,
                values > bounds.max if bounds.max is not None else None,
                "above the maximum",
            ),
        ):
            if broken is not None and broken.any():
                first = int(np.flatnonzero(broken.to_numpy())[0])
                result.reasons.append(
                    f"column {column!r}: {int(broken.sum())} value(s) {word} {limit:g} "
                    f"(first {values.iloc[first]!r} in data row {first + 1})"
                )
    return frame


def _all_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()


def _to_number(values: pd.Series, column: str, result: ValidationResult) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    not_numbers = values.notna() & numbers.isna()
    if not_numbers.any():
        first = int(np.flatnonzero(not_numbers.to_numpy())[0])
        result.reasons.append(
            f"column {column!r}: {int(not_numbers.sum())} value(s) that are not numbers "
            f"(first {values.iloc[first]!r} in data row {first + 1})"
        )
    infinite = np.isinf(numbers.to_numpy(dtype=float))
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        result.reasons.append(
            f"column {column!r}: {int(infinite.sum())} infinite value(s) (first in data row {first + 1})"
        )
    return numbers
