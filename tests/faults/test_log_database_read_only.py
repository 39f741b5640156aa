"""The prediction log's database turned read-only under load (issue 28; a full disk fails the
same writes the same way): ``/predict`` keeps answering, the rows the database refuses are
counted in ``/metrics`` and spilled, and ``driftloop db replay-spill`` puts every one of them
in once the database takes writes again: one row per answered request, none dropped."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import wait_until
from tests.faults.support import (
    closed_loop_load,
    describe,
    logged_requests,
    served_home,
    server_env,
)
from tests.support.cli import Cli, clean_env

pytestmark = pytest.mark.integration


def _set_read_only(url: str, read_only: bool) -> None:
    """Every new transaction of the database read-only (or not), and every open connection
    dropped so that the server's writers reconnect into it."""
    target = sa.make_url(url)
    name = target.database
    # from the maintenance database: a session of a read-only database cannot undo it
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        setting = "on" if read_only else "off"
        connection.execute(
            sa.text(f'alter database "{name}" set default_transaction_read_only = {setting}')
        )
        connection.execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = :name and pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    engine.dispose()


def _log_rows(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "driftloop_prediction_log_rows"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_a_read_only_log_database_spills_counts_and_replays(tmp_path, postgres_url):
    home = served_home(tmp_path / "home", postgres_url)
    env = server_env(home, DRIFTLOOP_LOG_SPILL_AFTER_SECONDS="2")
    with (
        PredictionServer(env, tmp_path / "server", workers=2) as server,
        closed_loop_load(server.url, home, clients=8) as load,
    ):
        load.wait_for(200, timeout=120)
        _set_read_only(postgres_url, True)
        load.wait_for(len(load.answered) + 500, timeout=120)  # answering all along
        spilled = wait_until(
            lambda: _log_rows(server.url).get("spilled") or None,
            timeout=60,
            what="spilled rows counted in /metrics",
            interval=0.5,
        )
        _set_read_only(postgres_url, False)
        load.wait_for(len(load.answered) + 200, timeout=120)
        load_seen = describe(load)
    server_log = server.log_tail(100_000)
    assert not load.refused and not load.dropped, load_seen
    assert 1 <= server_log.count("spilling rows to") <= 2, server_log[-3000:]  # once per writer
    assert "takes writes again" in server_log
    cli = Cli(clean_env(home.storage.home, DRIFTLOOP_DATABASE__URL=postgres_url), tmp_path)
    shown = cli("db", "replay-spill")
    replayed = int(shown.split("replayed ")[1].split()[0])
    assert replayed >= spilled > 0, shown
    logged = logged_requests(postgres_url)
    assert set(logged) == set(load.answered) and set(logged.values()) == {1}, load_seen
