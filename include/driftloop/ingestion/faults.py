"""Deliberately broken batches, for demos and tests of ingestion's quarantine.

Each fault takes a good batch and writes the kind of file a real feed sometimes delivers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data import write_table


def _missing_column(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    write_table(frame.drop(columns=[settings.feature_columns[-1]]), path, settings.data)


def _text_in_numeric(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    broken = frame.astype({settings.feature_columns[0]: object})
    broken.iloc[len(broken) // 2, 0] = "n/a (sensor fault)"
    write_table(broken, path, settings.data)


def _empty_file(_frame: pd.DataFrame, path: Path, _settings: Settings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _duplicate_header(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    columns = list(frame.columns)
    columns[1] = columns[0]
    write_table(frame.set_axis(columns, axis=1), path, settings.data)


def _wrong_separator(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    other = "," if settings.data.separator != "," else ";"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=other, index=False)


def _out_of_bounds(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    column, bounds = next(iter(settings.data.bounds.items()))
    broken = frame.copy()
    low = bounds.min if bounds.min is not None else 0.0
    broken.loc[broken.index[:3], column] = (bounds.max + 1) if bounds.max is not None else low - 1
    write_table(broken, path, settings.data)


def _too_many_missing(frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    broken = frame.copy()
    column = settings.feature_columns[0]
    n_missing = int(np.ceil(len(broken) * min(1.0, settings.data.max_missing_share + 0.1)))
    broken.loc[broken.index[:n_missing], column] = np.nan
    write_table(broken, path, settings.data)


FAULTS: dict[str, Callable[[pd.DataFrame, Path, Settings], None]] = {
    "missing-column": _missing_column,
    "text-in-numeric": _text_in_numeric,
    "empty-file": _empty_file,
    "duplicate-header": _duplicate_header,
    "wrong-separator": _wrong_separator,
    "out-of-bounds": _out_of_bounds,
    "too-many-missing": _too_many_missing,
}


def write_faulty_batch(kind: str, frame: pd.DataFrame, path: Path, settings: Settings) -> None:
    """Write ``frame`` to ``path`` broken in the way ``kind`` names."""
    if kind not in FAULTS:
        raise ValueError(f"unknown fault {kind!r}; choose one of {sorted(FAULTS)}")
    FAULTS[kind](frame, path, settings)
