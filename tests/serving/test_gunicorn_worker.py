"""The server's gunicorn worker stops without failing what a proxy holds (a replica stopped
behind nginx): new connections are refused at once, so nginx retries them elsewhere, while a
request in flight and the next request on a kept-alive connection are still answered."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from driftloop.stack.processes import free_port, wait_until
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

# A WSGI app whose /slow answers only once the test creates the release file (no clock).
APP = """
import os, time
from pathlib import Path

FOLDER = Path(os.environ["WORKER_TEST_FOLDER"])

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        (FOLDER / "slow-started").touch()
        while not (FOLDER / "release").exists():
            time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


def refused(port: int) -> bool | None:
    """True once a new connection is refused (None while it is still accepted)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return None
    except ConnectionRefusedError:
        return True


@pytest.fixture
def gunicorn(tmp_path: Path):
    (tmp_path / "slow_app.py").write_text(APP)
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "slow_app:app", "--pythonpath", str(tmp_path),
        "-k", "serving.gunicorn_worker.DrainingThreadWorker", "--workers", "1",
        "--threads", "4", "--keep-alive", "5", "--graceful-timeout", "30",
        "--bind", f"127.0.0.1:{port}",
    ]  # fmt: skip
    env = {**os.environ, "WORKER_TEST_FOLDER": str(tmp_path), "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: None if refused(port) else True, 30, "gunicorn to listen", 0.05)
        yield process, port, tmp_path
    finally:
        (tmp_path / "release").touch()
        if process.poll() is None:
            process.kill()
        process.wait(30)
        log.close()


def test_a_stopping_worker_refuses_new_connections_and_answers_what_it_holds(gunicorn):
    process, port, folder = gunicorn
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    kept.request("GET", "/fast")
    first = kept.getresponse()
    assert first.read() == b"ok" and first.getheader("Connection") != "close"

    answers: list[int] = []

    def slow_request() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/slow")
        answers.append(connection.getresponse().status)

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    wait_until(lambda: (folder / "slow-started").exists() or None, 30, "/slow to start", 0.02)

    process.send_signal(signal.SIGTERM)
    # stock gthread keeps listening until it exits (after /slow): nginx's new connections
    # would wait in the backlog and be reset; this worker refuses them while /slow still runs
    wait_until(lambda: refused(port), 30, "new connections to be refused", 0.02)
    assert process.poll() is None and not answers

    # the connection nginx keeps alive still gets its next request answered, and closed
    kept.request("GET", "/fast")
    last = kept.getresponse()
    assert (last.status, last.read(), last.getheader("Connection")) == (200, b"ok", "close")

    (folder / "release").touch()
    in_flight.join(30)
    assert answers == [200]
    assert process.wait(30) == 0
