"""Request validation at the edge: the records of a prediction request against the model
version's feature schema, column by column (vectorized) so large batches stay cheap. The
envelopes around them are pydantic models (``serving.schemas``).

Every problem becomes a :class:`RequestError` with an HTTP status and a sentence naming the
field and the record; no input reaches the model unchecked.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from driftloop.scoring.frame_checks import LARGEST
from driftloop.task import task_kind
from serving.batching import Rows
from serving.models import FeatureSchema

MAX_DETAILS = 10
_NUMBER_TYPES = (int, float)  # exact types: bool (a subclass of int) is not a number here


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and the reasons."""

    def __init__(self, status: int, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []


def check_feedback_value(value: Any, task: str) -> None:
    """A true value the task can use (a regression's must be a finite number, or every later
    A/B evaluation fails on it); a class label may be a number or a string, but not ``NaN``
    or an infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(422, f"value: a true value is a finite number or a label, not {value!r}")
    if (problem := task_kind(task).truth_problem(value)) is not None:
        raise RequestError(422, f"value: {problem}")


@dataclass(frozen=True)
class CheckedRecords:
    """The records as the model takes them, and which features each one left missing."""

    rows: pd.DataFrame | Rows  # what a micro-batcher takes: all-numeric records as an array
    missing: np.ndarray | None  # bool, records x features in schema order; None: nothing missing

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The records as a frame in schema order."""
        return self.rows.frame() if isinstance(self.rows, Rows) else self.rows

    def missing_names(self) -> list[list[str] | None]:
        """Per record, the names of its missing features (None when it has all)."""
        if self.missing is None:
            return [None] * len(self.rows)
        names = np.asarray(self.frame.columns, dtype=object)
        return [names[row].tolist() if row.any() else None for row in self.missing]


def records_frame(
    records: list[dict[str, Any]], schema: FeatureSchema, max_records: int, ignore: set[str]
) -> pd.DataFrame:
    """The records as a frame in schema order, or a :class:`RequestError` naming what is wrong."""
    return checked_records(records, schema, max_records, ignore).frame


def checked_records(
    records: list[dict[str, Any]],
    schema: FeatureSchema,
    max_records: int,
    ignore: set[str],
    max_missing_share: float = 1.0,
) -> CheckedRecords:
    """The records checked against ``schema``: a feature the version can take missing may be
    JSON ``null`` or absent and reaches the model as NaN; anything else wrong is a
    :class:`RequestError` naming the record and the field."""
    if not records:
        raise RequestError(422, "no records to predict")
    if len(records) > max_records:
        raise RequestError(
            413, f"{len(records)} records in one request; the limit is {max_records}"
        )
    if len(schema.numeric) == len(schema.names):
        rows = _numeric_rows(records, schema.names, ignore)
        if rows is not None:
            return CheckedRecords(rows, None)
    return _checked_frame(records, schema, ignore, max_missing_share)


def _numeric_rows(
    records: list[dict[str, Any]], names: tuple[str, ...], ignore: set[str]
) -> Rows | None:
    """The common case in plain Python and one array: every feature numeric, every record
    right. ``None`` when anything is off; :func:`_checked_frame` then says what."""
    width = len(names)
    try:
        rows = [[record[name] for name in names] for record in records]
    except KeyError:
        return None
    if any(len(record) != width and len(record.keys() - ignore) != width for record in records):
        return None
    if not all(type(value) in _NUMBER_TYPES for row in rows for value in row):
        return None
    try:
        values = np.array(rows, dtype=float)
    except OverflowError:
        return None
    if not (np.isfinite(values).all() and (np.abs(values) <= LARGEST).all()):
        return None
    return Rows(values, names)


def _checked_frame(
    records: list[dict[str, Any]], schema: FeatureSchema, ignore: set[str], max_share: float
) -> CheckedRecords:
    """Column by column with every problem named (at most ``MAX_DETAILS``)."""
    expected = set(schema.names)
    problems: list[str] = []
    for index, record in enumerate(records):
        keys = set(record) - ignore
        for name in sorted(expected - keys - schema.nullable):
            problems.append(f"record {index}: missing field {name!r}")
        for name in sorted(keys - expected)[:MAX_DETAILS]:
            problems.append(f"record {index}: unknown field {shown(name)}")
        if len(problems) >= MAX_DETAILS:
            break
    if problems:
        raise RequestError(422, "records do not match the model's features", problems[:MAX_DETAILS])
    # plain lists and numpy, column by column: a 1000-record request stays a few milliseconds
    columns: dict[str, Any] = {}
    missing = np.zeros((len(records), len(schema.names)), dtype=bool)
    for position, name in enumerate(schema.names):
        values = [r.get(name) for r in records]
        is_null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        if name in schema.nullable:
            missing[:, position] = is_null
        else:
            _note(problems, name, is_null, values, _CANNOT_BE_MISSING)
        if name in schema.numeric:
            columns[name] = _numbers(values, is_null, name, problems)
        else:
            wrong = np.fromiter((type(v) is not str for v in values), bool, len(values))
            _note(problems, name, wrong & ~is_null, values, "is not a string")
            # NaN, not None, is what scikit-learn's imputers look for in an object column
            columns[name] = pd.Series(values, dtype=object).where(~is_null, np.nan)
    if problems:
        raise RequestError(422, "records hold values the model cannot use", problems[:MAX_DETAILS])
    _check_missing_share(missing, max_share)
    return CheckedRecords(pd.DataFrame(columns), missing if missing.any() else None)


_CANNOT_BE_MISSING = (
    "is missing (null), and this model version was not trained with missing values for it "
    "(data.nullable_features lists features that may be)"
)


def _check_missing_share(missing: np.ndarray, max_share: float) -> None:
    width = missing.shape[1]
    counts = missing.sum(axis=1)
    over = np.flatnonzero(counts > max_share * width)
    if len(over):
        raise RequestError(
            422,
            f"records miss more than serving.max_missing_share ({max_share:g}) of their "
            f"{width} features",
            [f"record {i}: {counts[i]} of {width} features missing" for i in over[:MAX_DETAILS]],
        )


_NUMBER_OR_NULL = {int, float, type(None)}  # exact types: bool is not a number here


def _numbers(values: list[Any], is_null: np.ndarray, name: str, problems: list[str]) -> Any:
    """The column as floats, null as NaN; a NaN sent as a literal is a float and refused."""
    if not set(map(type, values)) <= _NUMBER_OR_NULL:
        wrong = np.fromiter((type(v) not in _NUMBER_OR_NULL for v in values), bool, len(values))
        _note(problems, name, wrong, values, "is not a number")
        return None
    try:
        numbers = np.array(values, dtype=float)  # None becomes NaN
    except OverflowError:  # an integer beyond float range
        numbers = np.array([math.nan if v is None else _as_float(v) for v in values])
    _note(problems, name, ~np.isfinite(numbers) & ~is_null, values, "is not a finite number")
    _note(
        problems,
        name,
        np.isfinite(numbers) & (np.abs(numbers) > LARGEST),
        values,
        f"is too large (beyond ±{LARGEST:.1e})",
    )
    return numbers


def _as_float(value: float | int) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range
        return math.inf


def _note(problems: list[str], name: str, wrong: np.ndarray, values: list[Any], what: str) -> None:
    for index in np.flatnonzero(wrong)[: max(0, MAX_DETAILS - len(problems))]:
        problems.append(f"record {index}: field {name!r} {what} (got {shown(values[index])})")


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother = 2, 60, 60
    return short


_SHORT = _short_repr()


def shown(value: Any) -> str:
    """A value as an error message quotes it: short, and safe for any JSON (a key of a
    megabyte, nesting a thousand levels deep, an integer of 4000 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return "a huge integer"
    return _SHORT.repr(value)
