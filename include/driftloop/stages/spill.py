"""Prediction-log rows the database would not take, kept in files until it takes them again.

The server's log writer (``driftloop.stages.prediction_writer``) spills a batch here when its
database has refused writes for longer than its patience (a full disk, a read-only database, a
long outage), so that ``/predict`` keeps answering and no row is silently dropped;
``driftloop db replay-spill`` inserts them later. One JSON object per line, one file per writer
process; each append holds an exclusive ``flock`` and is flushed to disk, and a replay renames a
file before it reads it, so a writer still spilling starts a new file instead of racing the
replay.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.storage import Prediction

log = logging.getLogger(__name__)
PATTERN = "predictions-*.jsonl"
SPILL_FOLDER = "prediction-spill"  # under storage.home, beside the other runtime files


class SpillError(RuntimeError):
    """A spill file cannot be read back; the message names the file and the line."""


def spill_rows(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Append ``rows`` (complete Prediction rows) to this process's spill file, on disk when
    this returns; raises OSError when the disk will not take them either."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions-{os.getpid()}.jsonl"
    text = "".join(json.dumps(row, default=_encode) + "\n" for row in rows)
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"cannot spill a {type(value).__name__}")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value["$datetime"])
        if isinstance(value, dict) and set(value) == {"$datetime"}
        else value
        for key, value in row.items()
    }


def replay(engine: sa.Engine, folder: Path) -> tuple[int, int]:
    """Insert every spilled row into ``predictions`` and remove each file once its rows are
    in (one transaction per file). Returns (files, rows)."""
    files = rows = 0
    for path in sorted(folder.glob(PATTERN)) + sorted(folder.glob("*.replaying")):
        taken = path
        if path.suffix == ".jsonl":  # a writer still spilling opens a new file from now on
            taken = path.with_name(f"{path.name}.{time.time_ns()}.replaying")
            path.rename(taken)
        with taken.open(encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # a write that began before the rename ends
            batch = []
            for number, line in enumerate(handle, start=1):
                try:
                    batch.append(_decode(json.loads(line)))
                except (json.JSONDecodeError, TypeError, ValueError) as exc:
                    raise SpillError(f"{taken}, line {number}: not a spilled row ({exc})") from None
        if batch:
            keys = set().union(*batch)  # rows spilled before a column was added lack it
            batch = [dict.fromkeys(keys) | row for row in batch]
            with engine.begin() as connection:
                connection.execute(sa.insert(Prediction), batch)
        taken.unlink()
        files, rows = files + 1, rows + len(batch)
        log.info("replayed %d rows from %s", len(batch), taken.name)
    return files, rows
