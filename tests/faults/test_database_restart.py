"""driftloop's database restarted under load (issue 28): a PostgreSQL of the test's own, stopped
and started again while clients post; ``/predict`` keeps answering, and afterwards the log
holds exactly one row per answered request (none lost, none twice)."""

from __future__ import annotations

import pytest

from driftloop.stack.prediction_server import PredictionServer
from tests.faults.own_postgres import own_postgres
from tests.faults.support import (
    closed_loop_load,
    describe,
    logged_requests,
    served_home,
    server_env,
)

pytestmark = pytest.mark.integration


def test_a_database_restart_under_load_loses_and_repeats_no_row(tmp_path):
    with own_postgres() as postgres:
        url = postgres.url("driftloop")
        home = served_home(tmp_path / "home", url)
        env = server_env(home, DRIFTLOOP_SERVING__POLL_SECONDS="1")
        with (
            PredictionServer(env, tmp_path / "server", workers=2) as server,
            closed_loop_load(server.url, home, clients=8) as load,
        ):
            load.wait_for(300, timeout=120)
            postgres.stop("fast")  # every connection dropped, in-flight inserts included
            down_from = len(load.answered)
            load.wait_for(down_from + 200, timeout=60)  # answered while the database is down
            postgres.start()
            load.wait_for(len(load.answered) + 300, timeout=120)
        # leaving the server drained every writer into the database
        seen = describe(load)
        logged = logged_requests(url)
    assert not load.refused and not load.dropped, seen
    twice = [r for r, rows in logged.items() if rows != 1]
    assert not twice, (len(twice), seen)
    assert set(logged) == set(load.answered), seen
