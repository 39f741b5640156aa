"""One of two replicas behind nginx stopped and started under load (issue 28): nginx sends
the requests the stopped replica cannot take to the other one, and the restarted replica gets
requests again within 30 s; every request answered has its one row in the shared log."""

from __future__ import annotations

import time

import pytest

from driftloop.stack.load_balancer import LoadBalancer, nginx_binary
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import StackError, wait_until
from tests.faults.support import (
    closed_loop_load,
    describe,
    logged_requests,
    served_home,
    server_env,
)
from tests.support.load import predicted_200

pytestmark = pytest.mark.integration
CLIENTS = 8
BACK_WITHIN_SECONDS = 30  # the bound: the restarted replica answers again by then


def test_a_replica_stopped_and_started_under_load_fails_almost_nothing(tmp_path, postgres_url):
    try:
        nginx_binary()
    except StackError as exc:
        pytest.skip(str(exc))
    home = served_home(tmp_path / "home", postgres_url)
    servers = [
        PredictionServer(server_env(home), tmp_path / f"replica-{i}", workers=1) for i in (1, 2)
    ]
    restarted_at = back_after = None
    try:
        for server in servers:
            server.start()
        addresses = [f"127.0.0.1:{server.port}" for server in servers]
        stopped = servers[0]
        with (
            LoadBalancer(addresses, tmp_path / "nginx") as balancer,
            closed_loop_load(balancer.url, home, CLIENTS) as load,
        ):
            load.wait_for(300, timeout=120)
            stopped.stop()  # graceful: in-flight requests finish, its writer drains
            load.wait_for(len(load.answered) + 300, timeout=120)  # the other replica alone
            port = stopped.preferred_port = stopped.port  # back where nginx looks for it
            stopped.start()
            assert stopped.port == port
            restarted_at = time.monotonic()
            wait_until(
                lambda: predicted_200(stopped.url) > 0 or None,
                BACK_WITHIN_SECONDS + 60,  # fail later than the bound, to report the time
                "nginx to send the restarted replica requests again",
                interval=0.2,
            )
            back_after = time.monotonic() - restarted_at
            load.wait_for(len(load.answered) + 300, timeout=120)
    finally:
        for server in servers:
            server.stop()
    seen = describe(load)
    requests_sent = len(load.answered) + len(load.refused) + len(load.dropped)
    assert len(load.refused) + len(load.dropped) <= 0.001 * requests_sent, seen
    assert back_after is not None and back_after <= BACK_WITHIN_SECONDS, back_after
    # a replica stopped moments after its restart still writes every row it answered
    logged = logged_requests(home.database_url)
    assert all(logged[r] == 1 for r in load.answered), seen
