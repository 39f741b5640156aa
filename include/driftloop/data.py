"""Reading the configured data set and fingerprinting rows and files."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import DataSettings


def read_table(path: Path, data: DataSettings) -> pd.DataFrame:
    """Read a data file in the configured format (the whole file, as pandas infers types)."""
    if data.format == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=data.separator)


def write_table(frame: pd.DataFrame, path: Path, data: DataSettings) -> None:
    """Write ``frame`` in the configured format, so batches look like the source data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.format == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep=data.separator, index=False)


def read_header(path: Path, data: DataSettings) -> list[str]:
    """Column names of a data file, read without loading the rows."""
    if data.format == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle, delimiter=data.separator), [])


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes: a batch's identity, whatever its name."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row; equal rows get equal keys (used to keep duplicates together)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def group_split(
    frame: pd.DataFrame, share: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows at random into (first, rest) with about ``share`` in first.

    Exact duplicate rows always land on the same side, so a model never meets in its
    evaluation a row it was trained on.
    """
    keys = row_keys(frame)
    unique_keys = np.unique(keys)
    rng.shuffle(unique_keys)
    counts = pd.Series(keys).value_counts().reindex(unique_keys).to_numpy()
    n_first_groups = int(np.searchsorted(np.cumsum(counts), share * len(frame)))
    in_first = np.isin(keys, unique_keys[:n_first_groups])
    return frame[in_first], frame[~in_first]


def comparable_row_keys(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Row hashes that agree however the rows were read back: a CSV round trip may turn 7 into
    7.0, and pandas' fast float parser may change the last digit, so numbers are compared at
    ten significant digits."""
    normalised = pd.DataFrame(
        {
            column: frame[column].map("{:.10g}".format)
            if pd.api.types.is_numeric_dtype(frame[column])
            else frame[column].astype(str)
            for column in columns
        }
    )
    return pd.util.hash_pandas_object(normalised, index=False).to_numpy()
