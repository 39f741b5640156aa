"""The prediction log's writer process: the rows a server hands over become ``predictions``.

Each server process starts one (``serving.prediction_log.PredictionLog``, the server side) and
pipes it pickled row lists; this process inserts them in batches. A process, not a thread,
because encoding and inserting a thousand rows costs about 20 ms of CPU, which in a thread
holds the server's GIL. It ignores SIGTERM and SIGINT (its server drains into it at stop),
keeps up to ``capacity`` writes in memory while the database is away, retries a failed insert
with backoff, and, given a spill folder, spills batches the database has refused for longer
than its patience to files (``driftloop.stages.spill``) instead of holding up the server. It
reports what became of every row on stdout (``OUTCOMES``) and stops at the end of its input,
after writing everything, also when its server is gone.

Run as ``python -m driftloop.stages.prediction_writer`` with the database URL in
``DRIFTLOOP_LOG_DATABASE_URL`` (the server does this itself).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_exponential,
)

from driftloop.stages.spill import spill_rows
from driftloop.storage import Prediction, make_engine

log = logging.getLogger(__name__)
_STOP = object()
_EMPTY_ROW: dict[str, Any] = {
    column.name: None
    for column in Prediction.__table__.columns
    if column.name not in {"id", "created_at"}
} | {"shadow": False, "status": 200}


def run_writer(
    url: str,
    batch_size: int,
    flush_seconds: float,
    retention_days: float | None,
    capacity: int = 2_000,
    spill_folder: Path | None = None,
    spill_after_seconds: float = 30.0,
) -> None:
    """The writer process: read pickled row lists from stdin (holding up to ``capacity`` of
    them), insert them in batches of up to ``batch_size`` rows or every ``flush_seconds``,
    report each insert's row count on stdout, and stop at the end of the input after writing
    everything, also when its server is gone."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):  # any core, not its pinned server's
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    engine = make_engine(url)
    incoming: queue.Queue[Any] = queue.Queue(maxsize=capacity)

    def read() -> None:
        source = sys.stdin.buffer
        try:
            while True:
                incoming.put(pickle.load(source))
        except (EOFError, OSError, pickle.UnpicklingError):
            incoming.put(_STOP)

    threading.Thread(target=read, name="read", daemon=True).start()
    outage = _Outage(spill_folder, spill_after_seconds)
    next_purge = 0.0  # purge at start, then hourly
    stopping = False
    while not stopping:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + flush_seconds
        while len(batch) < batch_size:
            try:
                item = incoming.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                break
            if item is _STOP:
                stopping = True
                break
            now, rows = item
            # executemany needs every row to name every column
            batch.extend({**_EMPTY_ROW, "created_at": now, **row} for row in rows)
        if batch:
            outage.store(engine, batch)
        if retention_days is not None and time.monotonic() >= next_purge:
            next_purge = time.monotonic() + 3600
            _purge(engine, retention_days)
    engine.dispose()


OUTCOMES = ("inserted", "spilled", "refused", "lost")


def _report(outcome: str, rows: int) -> None:
    """Tell the server what became of ``rows`` rows (one of OUTCOMES). A server killed with
    ``kill -9`` reads no more, and the writer must still insert what it holds, so a closed
    stdout is no reason to stop."""
    if rows:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            print(outcome, rows, flush=True)


class _Unwritable(Exception):
    """The database has not taken a write for longer than the writer's patience."""

    def __init__(self, cause: BaseException, remaining: list[dict[str, Any]]) -> None:
        super().__init__(str(cause))
        self.remaining = remaining


class _Outage:
    """Insert batches; when the database refuses writes for ``patience`` seconds (full disk,
    read-only, away), spill them to files instead, trying the database once per batch until it
    takes one again. Without a folder, retry for ever (the request threads then wait)."""

    def __init__(self, folder: Path | None, patience: float) -> None:
        self.folder, self.patience = folder, patience
        self.spilled = 0  # rows spilled during the current outage; 0: no outage

    def store(self, engine: sa.Engine, batch: list[dict[str, Any]]) -> None:
        if self.folder is None:
            stop = stop_never
        else:  # in an outage, one try per batch: the server must not wait on a dead database
            stop = stop_after_attempt(1) if self.spilled else stop_after_delay(self.patience)
        try:
            inserted = insert_rows(engine, batch, stop)
        except _Unwritable as exc:
            _report("inserted", len(batch) - len(exc.remaining))
            self._spill(exc.remaining, exc)
            return
        _report("inserted", inserted)
        _report("refused", len(batch) - inserted)
        if self.spilled:
            log.warning(
                "prediction log: the database takes writes again; %d rows were spilled to %s "
                "(insert them with `driftloop db replay-spill`)",
                self.spilled,
                self.folder,
            )
            self.spilled = 0

    def _spill(self, rows: list[dict[str, Any]], cause: _Unwritable) -> None:
        assert self.folder is not None
        try:
            path = spill_rows(self.folder, rows)
        except OSError as exc:
            log.error(
                "prediction log: LOST %d rows, neither database nor disk took them: %s "
                "(database: %s)",
                len(rows),
                exc,
                cause,
            )
            _report("lost", len(rows))
            return
        if not self.spilled:
            log.error(
                "prediction log: the database refused writes for %g s, spilling rows to %s "
                "until it takes them again: %s",
                self.patience,
                path,
                cause,
            )
        self.spilled += len(rows)
        _report("spilled", len(rows))


def insert_rows(engine: sa.Engine, batch: list[dict[str, Any]], stop: Any = stop_never) -> int:
    """Insert a batch, retrying while the database is away (until ``stop``, then
    :class:`_Unwritable` with the rows not inserted). A batch the database refuses for its
    content (PostgreSQL refuses NUL characters, say) would be refused forever and hold up every
    row behind it: it is cleaned and inserted row by row, and a row still refused is logged and
    dropped. Returns the number of rows inserted."""
    try:
        _insert_retrying(engine, batch, stop)
        return len(batch)
    except _Unwritable:
        raise
    except (sa.exc.StatementError, ValueError, TypeError) as exc:
        log.error("prediction log: the database refused a batch, inserting row by row: %s", exc)
    inserted = 0
    for position, row in enumerate(batch):
        try:
            _insert_retrying(engine, [_without_nul(row)], stop)
            inserted += 1
        except _Unwritable as exc:
            raise _Unwritable(exc, batch[position:]) from None
        except (sa.exc.StatementError, ValueError, TypeError) as exc:
            log.error(
                "prediction log: dropped the row of request %s, record %s: %s",
                row.get("request_id"),
                row.get("record_id"),
                exc,
            )
    return inserted


# content errors: the database's, and the driver's own (psycopg2 raises a bare ValueError for
# a NUL character before anything reaches the server)
_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError, ValueError, TypeError)


def _is_transient(error: BaseException) -> bool:
    """The database is away or not migrated yet (retry), not refusing this content (give up)."""
    refused = isinstance(error, _REFUSED) or (
        isinstance(error, sa.exc.StatementError) and not isinstance(error, sa.exc.DBAPIError)
    )
    return not refused


def _insert_retrying(engine: sa.Engine, rows: list[dict[str, Any]], stop: Any) -> None:
    try:
        for attempt in Retrying(
            retry=retry_if_exception(_is_transient),
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "prediction log insert failed, retrying: %s", state.outcome.exception()
            ),
        ):
            with attempt, engine.begin() as connection:
                connection.execute(sa.insert(Prediction), rows)
    except Exception as exc:
        if _is_transient(exc):  # retried until ``stop``: the database does not take writes
            raise _Unwritable(exc, rows) from exc
        raise


def _without_nul(value: Any) -> Any:
    """The value with NUL characters removed from every string in it (keys included)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def _purge(engine: sa.Engine, retention_days: float) -> None:
    try:
        removed = purge_older_than(engine, retention_days)
    except sa.exc.DBAPIError as exc:
        log.warning("prediction log: retention purge failed, next try in an hour: %s", exc)
        return
    if removed:
        log.info("prediction log: removed %d rows older than %g days", removed, retention_days)


def purge_older_than(engine: sa.Engine, days: float) -> int:
    """Delete prediction rows older than the retention period; return how many."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with engine.begin() as connection:
        return connection.execute(
            sa.delete(Prediction).where(Prediction.created_at < cutoff)
        ).rowcount


def main() -> None:
    """The process's entry point: its options from the server, its database from the
    environment (a URL with a password stays out of ``ps``)."""
    parser = argparse.ArgumentParser(description="driftloop's prediction-log writer process")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--flush-seconds", type=float, required=True)
    parser.add_argument("--retention-days", type=float)
    parser.add_argument("--capacity", type=int, default=2_000)
    parser.add_argument("--spill-folder", type=Path)
    parser.add_argument("--spill-after-seconds", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s prediction-log %(message)s"
    )
    run_writer(
        os.environ["DRIFTLOOP_LOG_DATABASE_URL"],
        args.batch_size,
        args.flush_seconds,
        args.retention_days,
        args.capacity,
        args.spill_folder,
        args.spill_after_seconds,
    )


if __name__ == "__main__":
    main()
