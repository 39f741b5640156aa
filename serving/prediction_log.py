"""The prediction log: every answered record (and every failed request) becomes a row.

A writer *process* (one per server process, ``python -m serving.prediction_log``) inserts rows
in batches. A process, not a thread, because encoding and inserting a thousand rows costs about
20 ms of CPU: in a thread that time holds the server's GIL and cuts large-request throughput.

A request thread hands its rows over before its response goes out: it pickles them and writes
them into the writer's stdin pipe itself, flushed. Once there they are in the writer's hands:
the pipe's contents outlive the server process, so a worker killed with ``kill -9`` loses no row
of a request it answered (the writer reads the pipe to its end and inserts everything). The
writer keeps up to ``capacity`` writes in memory while the database is away; beyond that the
pipe fills and the request waits rather than drop a row. A failed insert is retried with
backoff rather than lost, and ``close`` drains everything. The writer ignores SIGTERM and
SIGINT from its first statement, and its server answers nothing before it does (a signal to the
server's process group must not kill it before its server has drained into it) and stops
when its input ends: on ``close``, or when its server process is gone.

Feedback goes to its own table (``record_feedback``) and is joined at analysis time, so it may
arrive before its prediction row is written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import queue
import signal
import subprocess
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
from driftloop.storage import Feedback, Prediction, make_engine, session_scope

log = logging.getLogger(__name__)
_STOP = object()
_EMPTY_ROW: dict[str, Any] = {
    column.name: None
    for column in Prediction.__table__.columns
    if column.name not in {"id", "created_at"}
} | {"shadow": False, "status": 200}


# The writer's first statements, before any import that takes time: a server stopped (SIGTERM
# to its process group or session) within a second or two of starting must not kill a writer
# that already holds rows of answered requests. Python's own start-up is the only window left,
# and the server waits for the writer's line, so no request is answered inside it.
_WRITER_START = (
    "import signal; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "print('ignoring SIGTERM', flush=True); "
    "from serving.prediction_log import main; main()"
)


class DuplicateFeedback(ValueError):
    """Feedback for this record id was given before."""


class PredictionLog:
    """The server side of the log: hands rows to a writer process that inserts ``predictions``
    in batches."""

    def __init__(
        self,
        engine: sa.Engine,
        capacity: int = 2_000,
        batch_size: int = 1_000,
        flush_seconds: float = 0.2,
        retention_days: float | None = None,
        spill_folder: Path | None = None,
        spill_after_seconds: float = 30.0,
    ) -> None:
        """``capacity`` counts writes (one per request) the writer holds while it cannot insert.
        With ``spill_folder``, rows the database has refused for ``spill_after_seconds`` go to
        files there (``driftloop.stages.spill``) instead of holding up the server."""
        command = [
            sys.executable,
            "-c",
            _WRITER_START,
            "--batch-size",
            str(batch_size),
            "--flush-seconds",
            str(flush_seconds),
            "--capacity",
            str(capacity),
        ]
        if retention_days is not None:
            command += ["--retention-days", str(retention_days)]
        if spill_folder is not None:
            command += ["--spill-folder", str(spill_folder)]
            command += ["--spill-after-seconds", str(spill_after_seconds)]
        environment = {**os.environ, "DRIFTLOOP_LOG_DATABASE_URL": _url(engine)}
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
        )
        self._pipe = self._process.stdin
        _grow_pipe(self._pipe.fileno())
        # the first answer may only go out once the writer outlives a SIGTERM to the server
        started = self._process.stdout.readline()
        if started != b"ignoring SIGTERM\n":
            self._process.kill()
            raise RuntimeError(
                f"the prediction log writer did not start (exit code {self._process.wait()}); "
                "see the server log"
            )
        self._lock = threading.Lock()  # one frame at a time into the pipe
        self._closed = False
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._counter = threading.Thread(
            target=self._count, name="prediction-log-count", daemon=True
        )
        self._counter.start()

    @property
    def written(self) -> int:
        """Rows the writer has inserted so far."""
        return self.counts["inserted"]

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Hand rows (keys of :class:`~driftloop.storage.Prediction`) to the writer; returns once
        they are in its pipe, waiting while the pipe is full."""
        frame = pickle.dumps((datetime.now(UTC), rows), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._closed:
                raise RuntimeError("the prediction log is closed")
            try:
                self._pipe.write(frame)  # the writer fills in the rest of each row
                self._pipe.flush()
            except (BrokenPipeError, OSError) as exc:
                raise RuntimeError(
                    f"the prediction log writer is gone (exit code {self._process.poll()}): "
                    f"{exc}; see the server log"
                ) from None

    def close(self, timeout: float = 30.0) -> None:
        """Let the writer insert everything it was handed, then stop it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self._pipe.close()  # the writer's end of input
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("prediction log: writer still busy after %.0f s", timeout)
            return
        self._counter.join(timeout)

    def _count(self) -> None:
        """What became of the rows, as the writer reports it: kept here and in ``/metrics``."""
        from serving.metrics import LOG_ROWS

        for line in self._process.stdout:
            outcome, _, number = line.decode().partition(" ")
            if outcome in self.counts and number.strip().isdigit():
                self.counts[outcome] += int(number)
                LOG_ROWS.labels(outcome).inc(int(number))


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """A 1 MiB pipe instead of Linux's 64 KiB: a burst of requests is handed over without
    waiting for the writer to read (Linux only; elsewhere the default size)."""
    with contextlib.suppress(AttributeError, OSError):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


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
            inserted = _insert(engine, batch, stop)
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


def _insert(engine: sa.Engine, batch: list[dict[str, Any]], stop: Any = stop_never) -> int:
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


def record_feedback(engine: sa.Engine, model_name: str, record_id: str, value: Any) -> None:
    """Store the true value of one of ``model_name``'s records; a second one for the same
    record is refused (another model's record of the same id is another record)."""
    try:
        with session_scope(engine) as session:
            session.add(
                Feedback(
                    model_name=model_name,
                    record_id=record_id,
                    value=value,
                    created_at=datetime.now(UTC),
                )
            )
    except sa.exc.IntegrityError:
        raise DuplicateFeedback(
            f"feedback for record {record_id!r} of model {model_name!r} was already given"
        ) from None


def purge_older_than(engine: sa.Engine, days: float) -> int:
    """Delete prediction rows older than the retention period; return how many."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with engine.begin() as connection:
        return connection.execute(
            sa.delete(Prediction).where(Prediction.created_at < cutoff)
        ).rowcount


def main() -> None:
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
