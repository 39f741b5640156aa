"""No 5xx from any body under a real gunicorn, and no worker dies: the same generated requests
as the in-process property test, sent over a socket to the server as production runs it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.stack.processes import free_port
from tests.conftest import ROOT
from tests.support.hostile import (
    ADMIN,
    API_KEY,
    ROUTES,
    assert_refused_politely,
    requests_for,
)
from tests.support.served_home import production_and_staging

pytestmark = pytest.mark.integration
EXAMPLES_UNDER_GUNICORN = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn with two workers, API keys required and an admin token set."""
    with production_and_staging(tmp_path_factory.mktemp("hostile-gunicorn")) as (settings, _):
        run = tmp_path_factory.mktemp("hostile-gunicorn-run")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        env.update(
            DRIFTLOOP_CONFIG=str(ROOT / "driftloop.yaml"),
            DRIFTLOOP_STORAGE__HOME=str(settings.storage.home),
            DRIFTLOOP_SERVING__REQUIRE_API_KEY="true",
            DRIFTLOOP_API_KEYS=API_KEY,
            DRIFTLOOP_ADMIN_TOKEN=ADMIN,
            DRIFTLOOP_BIND=f"127.0.0.1:{port}",
            DRIFTLOOP_WORKERS="2",
            DRIFTLOOP_THREADS="2",
            PROMETHEUS_MULTIPROC_DIR=str(run / "metrics"),
        )
        log_path = run / "gunicorn.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    GUNICORN,
                    "-c",
                    str(ROOT / "serving/gunicorn.conf.py"),
                    "serving.app:create_app()",
                ],
                env=env,
                cwd=run,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_ready(port, process, log_path)
                yield port, process, log_path
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(60)


GUNICORN = str(ROOT / ".venv/bin/gunicorn")


def _wait_ready(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            if _send(port, "GET", "/ready", b"", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("gunicorn did not become ready: " + log_path.read_text()[-3000:])


def _send(port: int, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _workers(master: int) -> set[int]:
    """The worker processes of gunicorn's master (their log writers are their own children)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


@pytest.fixture(scope="module")
def workers_at_start(server):
    _port, process, _log = server
    workers = _workers(process.pid)
    assert len(workers) == 2
    return workers


@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(
    max_examples=EXAMPLES_UNDER_GUNICORN,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_body_or_header_gets_a_5xx_under_gunicorn(server, workers_at_start, method, path, data):
    port, process, log_path = server
    request = data.draw(requests_for(path))
    try:
        status, raw = _send(port, method, path, request.body, request.headers)
    except ConnectionResetError:
        # gunicorn closes the socket once a body over the limit has been refused, sometimes
        # before the client has finished sending it: a refusal, and the worker lives on
        assert len(request.body) > 2_000_000, request
        return
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    assert_refused_politely(status, answer, request)
    assert _workers(process.pid) == workers_at_start, log_path.read_text()[-3000:]


def test_no_worker_died_and_the_server_still_answers(server, workers_at_start):
    port, process, log_path = server
    assert process.poll() is None
    assert _workers(process.pid) == workers_at_start
    log = log_path.read_text()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log, log[-3000:]
    assert _send(port, "GET", "/ready", b"", {})[0] == 200
