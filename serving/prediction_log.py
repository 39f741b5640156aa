"""The prediction log, server side: every answered record (and every failed request) becomes a
row, inserted by a writer process (``driftloop.stages.prediction_writer``, one per server
process).

A request thread hands its rows over before its response goes out: it pickles them and writes
them into the writer's stdin pipe itself, flushed. Once there they are in the writer's hands:
the pipe's contents outlive the server process, so a worker killed with ``kill -9`` loses no row
of a request it answered (the writer reads the pipe to its end and inserts everything). The
writer keeps up to ``capacity`` writes in memory while the database is away; beyond that the
pipe fills and the request waits rather than drop a row. The writer ignores SIGTERM and SIGINT
from its first statement, and its server answers nothing before it does (a signal to the
server's process group must not kill it before its server has drained into it).

Feedback goes to its own table (``driftloop.stages.feedback``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.stages.prediction_writer import OUTCOMES

log = logging.getLogger(__name__)

# The writer's first statements, before any import that takes time: a server stopped (SIGTERM
# to its process group or session) within a second or two of starting must not kill a writer
# that already holds rows of answered requests. Python's own start-up is the only window left,
# and the server waits for the writer's line, so no request is answered inside it.
_WRITER_START = (
    "import signal; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "print('ignoring SIGTERM', flush=True); "
    "from driftloop.stages.prediction_writer import main; main()"
)


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
