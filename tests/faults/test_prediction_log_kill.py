"""The prediction log's promise to a server that dies: once ``write`` has returned, its rows are
in the writer's hands. A process writes rows and kills itself with SIGKILL right after the
last ``write`` returns (a worker killed just after answering); every row must arrive."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from driftloop.schema import upgrade
from driftloop.stack.processes import wait_until
from driftloop.storage import make_engine

pytestmark = pytest.mark.integration

DIES_AFTER_WRITING = """
import os, signal, sys
from driftloop.storage import make_engine
from serving.prediction_log import PredictionLog

log = PredictionLog(make_engine(sys.argv[1]), flush_seconds=0.05)
for i in range(int(sys.argv[2])):
    log.write([{"request_id": f"req-{i}", "record_id": f"rec-{i}-{j}", "model_name": "wine",
                "variant": "production", "model_version": "1", "inputs": {"x": j},
                "output": {"y": 1}, "latency_ms": 1.0} for j in range(20)])
print(log._process.pid, flush=True)  # the writer, for the test to wait on
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_rows_written_before_a_kill_9_all_arrive(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = make_engine(url)
    upgrade(engine)
    requests = 2_000
    done = subprocess.run(
        [sys.executable, "-c", DIES_AFTER_WRITING, url, str(requests)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    writer = int(done.stdout.split()[0])

    def writer_gone() -> bool | None:
        try:
            with open(f"/proc/{writer}/stat") as stat:  # a zombie counts as gone
                return True if stat.read().split(")")[-1].split()[0] == "Z" else None
        except FileNotFoundError:
            return True

    wait_until(writer_gone, timeout=60, what="the orphaned writer to finish", interval=0.1)
    with engine.connect() as connection:
        rows = connection.scalar(sa.text("select count(*) from predictions"))
    assert rows == requests * 20


def test_a_writer_signalled_right_after_its_server_started_keeps_every_row(tmp_path):
    """A server stopped (SIGTERM to its process group or session) a moment after it started:
    its writer may still be importing, but the log is only handed out once the writer ignores
    SIGTERM, so the rows of the requests it answered all arrive."""
    import os
    import signal

    from serving.prediction_log import PredictionLog

    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade(engine)
    log = PredictionLog(engine, flush_seconds=0.05)
    os.kill(log._process.pid, signal.SIGTERM)  # as the stop of a server that just started
    rows = [
        {"request_id": f"req-{i}", "record_id": f"rec-{i}", "model_name": "wine", "inputs": {}}
        for i in range(50)
    ]
    log.write(rows)
    log.close()
    assert log._process.returncode == 0
    with engine.connect() as connection:
        assert connection.scalar(sa.text("select count(*) from predictions")) == 50
