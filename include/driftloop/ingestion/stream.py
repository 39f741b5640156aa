"""The initial reference split and the replay of the data set as time-stamped batches."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data import group_split, read_table, write_table
from driftloop.ingestion.scenarios import DEFAULT_STRENGTH, SCENARIOS, StreamContext

TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class StreamError(ValueError):
    """A replay that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class WrittenBatch:
    path: Path
    rows: int
    batch_time: datetime
    note: str


def reference_path(settings: Settings) -> Path:
    suffix = ".parquet" if settings.data.format == "parquet" else ".csv"
    return settings.storage.reference_dir / f"reference{suffix}"


def load_dataset(settings: Settings) -> pd.DataFrame:
    """The configured data set, restricted to the feature and target columns."""
    frame = read_table(settings.data.path, settings.data)
    columns = [*settings.feature_columns, settings.data.target]
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise StreamError(f"{settings.data.path} lacks configured column(s) {missing}")
    return frame[columns]


def split_reference(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, stream pool): seeded, so every command derives the same split."""
    rng = np.random.default_rng(settings.stream.seed)
    return group_split(load_dataset(settings), settings.stream.reference_share, rng)


def build_reference(settings: Settings) -> tuple[Path, int]:
    """Write the initial reference split, the data the first model will be trained on.

    Written beside and then renamed into place, so parallel drift checks that all build it on
    first use never read a half-written file."""
    reference, _pool = split_reference(settings)
    path = reference_path(settings)
    partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        write_table(reference, partial, settings.data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path, len(reference)


def batch_file_name(index: int, batch_time: datetime, suffix: str, label: str = "") -> str:
    middle = f"-{label}" if label else ""
    return f"batch-{index:04d}{middle}-{batch_time.strftime(TIME_FORMAT)}{suffix}"


def parse_batch_time(name: str) -> datetime | None:
    """The timestamp a batch file name carries, if any."""
    stem = Path(name).stem
    for part in reversed(stem.split("-")):
        try:
            return datetime.strptime(part, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def replay(
    settings: Settings,
    scenario: str,
    n_batches: int | None = None,
    start_batch: int | None = None,
    strength: float | None = None,
    shift_features: tuple[str, ...] = (),
    seed: int | None = None,
) -> list[WrittenBatch]:
    """Cut the stream pool into batches shaped by ``scenario``, written to the landing folder."""
    if scenario not in SCENARIOS:
        raise StreamError(f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}")
    chosen = SCENARIOS[scenario]
    _reference, pool = split_reference(settings)
    batch_size = settings.stream.batch_size
    most = len(pool) // batch_size
    if most == 0:
        raise StreamError(
            f"the stream pool has {len(pool)} rows, fewer than one batch of {batch_size}"
        )
    n_batches = most if n_batches is None else n_batches
    if not 1 <= n_batches <= most:
        raise StreamError(
            f"--batches must be between 1 and {most} ({len(pool)} rows in batches of {batch_size})"
        )
    second = None
    if chosen.needs_second_source:
        if settings.data.drift_source is None:
            raise StreamError(f"scenario {scenario!r} needs data.drift_source in the config")
        second = read_table(settings.data.drift_source, settings.data)
        missing = sorted(set(pool.columns) - set(second.columns))
        if missing:
            raise StreamError(f"{settings.data.drift_source} lacks column(s) {missing}")
    context = StreamContext(
        pool=pool,
        n_batches=n_batches,
        batch_size=batch_size,
        rng=np.random.default_rng(settings.stream.seed if seed is None else seed),
        features=settings.feature_columns,
        target=settings.data.target,
        start_batch=n_batches // 3 if start_batch is None else start_batch,
        second_source=second,
        shift_features=shift_features,
        strength=DEFAULT_STRENGTH[scenario] if strength is None else strength,
    )
    try:
        made = chosen.make(context)
    except ValueError as exc:
        raise StreamError(str(exc)) from None
    suffix = reference_path(settings).suffix
    written = []
    for index, batch in enumerate(made, start=1):
        batch_time = batch_timestamp(settings, index)
        path = settings.storage.landing_dir / batch_file_name(index, batch_time, suffix)
        write_table(batch.frame, path, settings.data)
        written.append(WrittenBatch(path, len(batch.frame), batch_time, batch.note))
    return written


def batch_timestamp(settings: Settings, index: int) -> datetime:
    return settings.stream.start_time + timedelta(
        minutes=settings.stream.interval_minutes * (index - 1)
    )
