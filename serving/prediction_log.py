"""The prediction log: every answered record (and every failed request) becomes a row.

Request threads hand rows to a bounded buffer and go on; one writer thread inserts them in
batches. A full buffer makes the request wait rather than drop a row, a failed insert is
retried with backoff rather than lost, and ``close`` drains the buffer, so nothing is lost under
load or on a graceful shutdown. Feedback goes to its own table (``record_feedback``) and is
joined at analysis time, so it may arrive before its prediction row is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from tenacity import Retrying, stop_never, wait_exponential

from driftloop.storage import Feedback, Prediction, session_scope

log = logging.getLogger(__name__)
_STOP = object()
_EMPTY_ROW: dict[str, Any] = {
    column.name: None
    for column in Prediction.__table__.columns
    if column.name not in {"id", "created_at"}
} | {"shadow": False, "status": 200}


class DuplicateFeedback(ValueError):
    """Feedback for this record id was given before."""


class PredictionLog:
    """A bounded buffer in front of batched inserts into ``predictions``."""

    def __init__(
        self,
        engine: sa.Engine,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_seconds: float = 0.2,
        retention_days: float | None = None,
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self._next_purge = 0.0  # purge at start, then hourly
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._buffer: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._closed = False
        self.written = 0
        self._writer.start()

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows (keys of :class:`~driftloop.storage.Prediction`); waits while the buffer is full."""
        if self._closed:
            raise RuntimeError("the prediction log is closed")
        now = datetime.now(UTC)
        for row in rows:
            # executemany needs every row to name every column
            self._buffer.put({**_EMPTY_ROW, "created_at": now, **row})

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still buffered, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._buffer.put(_STOP)
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.error("prediction log: writer still busy after %.0f s", timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[dict[str, Any]] = []
            deadline = time.monotonic() + self.flush_seconds
            while len(batch) < self.batch_size:
                try:
                    item = self._buffer.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                self._insert(batch)
            self._purge_when_due()

    def _purge_when_due(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + 3600
        try:
            removed = purge_older_than(self.engine, self.retention_days)
        except sa.exc.DBAPIError as exc:
            log.warning("prediction log: retention purge failed, next try in an hour: %s", exc)
            return
        if removed:
            log.info(
                "prediction log: removed %d rows older than %g days", removed, self.retention_days
            )

    def _insert(self, batch: list[dict[str, Any]]) -> None:
        for attempt in Retrying(
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop_never,
            before_sleep=lambda state: log.warning(
                "prediction log insert failed, retrying: %s", state.outcome.exception()
            ),
        ):
            with attempt, self.engine.begin() as connection:
                connection.execute(sa.insert(Prediction), batch)
        self.written += len(batch)


def record_feedback(engine: sa.Engine, record_id: str, value: Any) -> None:
    """Store the true value of a record; a second one for the same record is refused."""
    try:
        with session_scope(engine) as session:
            session.add(Feedback(record_id=record_id, value=value, created_at=datetime.now(UTC)))
    except sa.exc.IntegrityError:
        raise DuplicateFeedback(f"feedback for record {record_id!r} was already given") from None


def unmatched_feedback(engine: sa.Engine) -> int:
    """Feedback whose record id no prediction row carries (yet)."""
    with session_scope(engine) as session:
        matched = (
            sa.select(Prediction.id).where(Prediction.record_id == Feedback.record_id).exists()
        )
        return session.scalar(sa.select(sa.func.count(Feedback.id)).where(~matched)) or 0


def purge_older_than(engine: sa.Engine, days: float) -> int:
    """Delete prediction rows older than the retention period; return how many."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with engine.begin() as connection:
        return connection.execute(
            sa.delete(Prediction).where(Prediction.created_at < cutoff)
        ).rowcount
