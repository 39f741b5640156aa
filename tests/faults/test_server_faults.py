"""Faults of a real deployment, injected into a real gunicorn under load (issue 28): a worker
killed with ``kill -9``, and ``SIGTERM`` (a rolling restart). driftloop's tables are in
PostgreSQL, as in the compose stack; the model is a small one registered without training."""

from __future__ import annotations

import signal

import psutil
import pytest

from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import session_members, wait_until
from tests.faults.support import (
    closed_loop_load,
    describe,
    logged_requests,
    served_home,
    server_env,
    workers,
    writers_of,
)

pytestmark = pytest.mark.integration
CLIENTS = 8


@pytest.fixture
def home(tmp_path, postgres_url):
    return served_home(tmp_path / "home", postgres_url)


def test_a_worker_killed_under_load_loses_no_answered_request(home, tmp_path):
    """The master replaces the worker; every answered request has exactly one row, the killed
    worker's answers included (each row reached its writer before the answer went out)."""
    with PredictionServer(server_env(home), tmp_path / "server", workers=2) as server:
        with closed_loop_load(server.url, home, CLIENTS) as load:
            load.wait_for(300, timeout=120)
            victim = workers(server)[0]
            orphans = writers_of(victim)
            assert len(orphans) == 1
            victim.kill()
            wait_until(
                lambda: (
                    True
                    if len(pids := {w.pid for w in workers(server)}) == 2 and victim.pid not in pids
                    else None
                ),
                timeout=60,
                what="the master to replace the killed worker",
                interval=0.2,
            )
            answered_before = len(load.answered)
            load.wait_for(answered_before + 300, timeout=120)  # the replacement answers too
        # the killed worker's writer inserts what it was handed, then stops on its own
        _, alive = psutil.wait_procs(orphans, timeout=60)
        assert not alive, "the killed worker's writer did not finish"
    logged = logged_requests(home.database_url)
    seen = describe(load)
    assert len(set(load.answered)) == len(load.answered)
    missing = [r for r in load.answered if logged[r] != 1]
    assert not missing, (len(missing), seen)
    # requests with a row but no answer: at most those that died with the worker
    unanswered_rows = sum(logged.values()) - len(load.answered)
    assert 0 <= unanswered_rows <= len(load.dropped), seen
    # each client loses at most the one request on its connection to the killed worker
    assert len(load.dropped) <= CLIENTS and not load.refused, seen


def test_sigterm_finishes_in_flight_requests_and_writes_every_row(home, tmp_path):
    """A rolling restart's SIGTERM to the master: it exits cleanly, every request it took is
    answered, and the log holds exactly the answered requests before the last process exits."""
    server = PredictionServer(server_env(home), tmp_path / "server", workers=2)
    server.start()
    try:
        assert server.process is not None
        master = server.process
        with closed_loop_load(server.url, home, CLIENTS, new_connections=True) as load:
            load.wait_for(300, timeout=120)
            master.send_signal(signal.SIGTERM)
            code = master.wait(60)
        _, left = psutil.wait_procs(session_members(master.pid), timeout=10)
    finally:
        server.stop()
    seen = describe(load)
    assert code == 0, server.log_tail()
    assert not left, f"still running after the master exited: {left}"
    assert not load.refused, seen  # nothing answered with an error while stopping
    logged = logged_requests(home.database_url)
    assert set(logged) == set(load.answered), (
        seen
    )  # no answered request unlogged, no row unanswered
    assert set(logged.values()) == {1}
