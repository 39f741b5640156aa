"""The MLflow server down for a minute under load (issue 28): ``/predict`` keeps answering with
the versions it loaded; each worker logs the failed poll once, retries every poll, and says
when the registry answers again."""

from __future__ import annotations

import time

import pytest

from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import wait_until

from .support import closed_loop_load, describe, logged_requests, served_home, server_env

pytestmark = pytest.mark.integration
OUTAGE_SECONDS = 60.0  # the minute
WORKERS = 2


def test_predict_answers_through_a_registry_outage(tmp_path, postgres_url):
    mlflow = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow")
    mlflow.start()
    port = mlflow.port
    try:
        home = served_home(tmp_path / "home", postgres_url, tracking_uri=mlflow.tracking_uri)
        # MLflow's client would retry one call for minutes with backoff: the server's poll is
        # the retry here, so one quick try per poll (a deployment may keep MLflow's defaults)
        env = server_env(
            home,
            DRIFTLOOP_SERVING__POLL_SECONDS="1",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="5",
        )
        with (
            PredictionServer(env, tmp_path / "server", workers=WORKERS) as server,
            closed_loop_load(server.url, home, clients=8) as load,
        ):
            load.wait_for(200, timeout=120)
            mlflow.stop()
            down_until = time.monotonic() + OUTAGE_SECONDS

            def failures() -> int:
                return server.log_tail(100_000).count("model refresh failed")

            wait_until(
                lambda: True if failures() >= WORKERS else None,
                timeout=60,
                what="each worker to log its failed poll",
                interval=0.5,
            )
            while time.monotonic() < down_until:  # the outage lasts its minute, under load
                load.wait_for(len(load.answered) + 50, timeout=30)
            during = len(load.answered)
            mlflow = MlflowServer(
                f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow", port=port
            )
            mlflow.start()
            wait_until(
                lambda: (
                    True
                    if server.log_tail(100_000).count("model refresh works again") >= WORKERS
                    else None
                ),
                timeout=60,
                what="each worker to reach the registry again",
                interval=0.5,
            )
            load.wait_for(during + 100, timeout=60)
            server_log = server.log_tail(100_000)
    finally:
        mlflow.stop()
    seen = describe(load)
    assert not load.refused and not load.dropped, seen
    assert set(load.versions) == {"1"}, seen  # the loaded version, all along
    # once per worker per outage, though it polled about sixty times
    assert server_log.count("model refresh failed") == WORKERS, server_log[-3000:]
    logged = logged_requests(home.database_url)
    assert all(logged[r] == 1 for r in load.answered) and len(logged) == len(load.answered)
