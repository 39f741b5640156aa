"""Rows of a file checked against a version's feature schema, by the rules ``/predict`` applies
to JSON records: numeric features are finite numbers within float32's range, a feature the
version cannot take missing is present, and no row misses more than
``serving.max_missing_share`` of its features.

A request is refused whole; a file is not: each bad row is set aside with its reasons and the
others are scored. Checks run column by column on whole chunks (numpy), so they cost little
beside the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.scoring.model import FeatureSchema

# scikit-learn's trees cast inputs to float32 and fail beyond its range (in the server after
# routing, a 500 that would count against the variant): the server's record checks and these
# row checks refuse such values up front
LARGEST = float(np.finfo(np.float32).max)
_CANNOT_BE_MISSING = "is missing, and this version was not trained with missing values for it"


def missing_columns(columns: list[str], schema: FeatureSchema) -> list[str]:
    """Features the version needs that the file has no column for (nullable ones may be
    absent: every row then lacks them)."""
    present = set(columns)
    return [name for name in schema.names if name not in present and name not in schema.nullable]


@dataclass(frozen=True)
class CheckedChunk:
    """A chunk split into the rows the model takes and the rows set aside."""

    features: pd.DataFrame  # the usable rows, schema columns in schema order
    usable: np.ndarray  # bool per row of the chunk
    missing: np.ndarray  # bool, usable rows x features: which ones were missing
    reasons: dict[int, list[str]]  # position in the chunk -> why the row was set aside


def check_chunk(
    chunk: pd.DataFrame, schema: FeatureSchema, max_missing_share: float
) -> CheckedChunk:
    """Split ``chunk`` into usable and refused rows (see the module docstring for the rules)."""
    rows = len(chunk)
    problems: dict[int, list[str]] = {}
    columns: dict[str, np.ndarray | pd.Series] = {}
    missing = np.zeros((rows, len(schema.names)), dtype=bool)
    for position, name in enumerate(schema.names):
        if name not in chunk.columns:  # a nullable feature the file does not have
            columns[name] = np.full(rows, np.nan)
            missing[:, position] = True
            continue
        raw = chunk[name]
        is_null = raw.isna().to_numpy()
        if name in schema.numeric:
            values, not_number = _numbers(raw)
            _note(problems, not_number, raw, f"field {name!r} is not a number")
            finite = np.isfinite(values)
            _note(problems, ~finite & ~is_null & ~not_number, raw, f"field {name!r} is not finite")
            _note(
                problems, finite & (np.abs(values) > LARGEST), raw, f"field {name!r} is too large"
            )
            columns[name] = values
        else:
            # NaN, not None, is what scikit-learn's imputers look for in an object column
            columns[name] = raw.astype(object).where(~is_null, np.nan).to_numpy()
        if name in schema.nullable:
            missing[:, position] = is_null
        else:
            _note(problems, is_null, None, f"field {name!r} {_CANNOT_BE_MISSING}")
    counts = missing.sum(axis=1)
    width = len(schema.names)
    for index in np.flatnonzero(counts > max_missing_share * width):
        problems.setdefault(int(index), []).append(
            f"{counts[index]} of {width} features missing (serving.max_missing_share is "
            f"{max_missing_share:g})"
        )
    usable = np.ones(rows, dtype=bool)
    usable[list(problems)] = False
    frame = pd.DataFrame(columns, index=chunk.index)
    if not usable.all():
        frame = frame[usable]
    return CheckedChunk(frame, usable, missing[usable], problems)


def _numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column as floats and which non-empty cells were not numbers."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(raw), dtype=bool)
    text = raw.astype(object)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # empty cells and the usual missing markers ("NA", "null", "nan") were read as missing
    return values, np.isnan(values) & ~raw.isna().to_numpy()


def _note(
    problems: dict[int, list[str]], wrong: np.ndarray, raw: pd.Series | None, what: str
) -> None:
    for index in np.flatnonzero(wrong):
        got = "" if raw is None else f" (got {str(raw.iloc[index])[:40]!r})"
        problems.setdefault(int(index), []).append(what + got)
