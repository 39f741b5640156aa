"""Faults at the Airflow level (issue 28), injected into the real processes of one shared stack
(tests/faults/airflow_loop.py): the scheduler killed mid-run and a Celery worker killed while it
trains the retrain that run started (one pass of the loop, both crashes); the MLflow server down
for a minute during ``retrain`` while a prediction server on the same registry answers under
load (one outage, both of the issue's MLflow faults). Each test waits for the states Airflow's
REST API reports, never for a time (but the outage's minute), and checks what driftloop
recorded: nothing twice, nothing lost, nothing half-done in the registry, one prediction-log
row per answered request."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import wait_until
from driftloop.storage import Batch, DriftCheck
from tests.faults.airflow_loop import AirflowLoop, airflow_loop, describe_runs
from tests.faults.support import closed_loop_load, describe, logged_requests

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
RUN_TIMEOUT = 240.0  # seconds; a bound on waiting, not a pace
OUTAGE_SECONDS = 60.0  # the minute of MLflow down under load
SERVER_WORKERS = 2


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowLoop]:
    with airflow_loop(tmp_path_factory.mktemp("airflow-faults")) as running:
        yield running


def _roles(versions: list[dict[str, str]]) -> dict[str, tuple[str, str]]:
    return {v["version"]: (v["aliases"], v["gate"]) for v in versions}


def test_a_scheduler_and_a_training_worker_killed_record_nothing_twice(loop: AirflowLoop) -> None:
    """Two crashes in one pass of the loop. kill -9 of the scheduler while drift_monitor's checks
    run: a new scheduler finishes the run; one drift check per batch, one drift event. Then
    kill -9 of the training worker (its task with it) while the retrain that event started
    trains: the heartbeat stops, the scheduler fails that try, the retry runs on a new worker;
    one retrain run, one decision and at most one new version."""
    decisions_before, versions_before = loop.retrain_runs(), loop.versions()
    loop.land("stream", 4, 2)  # two drifting batches, landed together: two mapped checks
    run_id = loop.airflow.trigger("drift_monitor")
    loop.wait_for_any("drift_monitor", run_id, "check_batch", {"running", "success"}, 120)
    loop.airflow.crash_and_restart("scheduler")
    state = loop.airflow.wait_for_run("drift_monitor", run_id, timeout=RUN_TIMEOUT)
    assert state == "success", describe_runs(loop, "drift_monitor")

    retrain = wait_until(
        lambda: next(iter(loop.airflow.dag_runs("retrain")), None),
        60,
        "the retrain run the drift event starts",
    )["dag_run_id"]
    loop.wait_for_task("retrain", retrain, "train", {"running"}, 120)
    loop.replace_training_worker()
    assert loop.airflow.wait_for_run("retrain", retrain, RUN_TIMEOUT) == "success", describe_runs(
        loop, "retrain"
    )
    assert loop.task_state("retrain", retrain, "train") == ("success", 2)
    assert "train" in loop.training.executed("training-2")

    with loop.engine.connect() as connection:
        batches = connection.execute(sa.select(Batch.id)).scalars().all()
        checks = Counter(connection.execute(sa.select(DriftCheck.batch_id)).scalars())
    assert len(batches) == 2 and checks == Counter(batches), (batches, checks)
    assert len(loop.airflow.asset_events(DRIFT_ASSET_URI)) == 1
    # Production decays on these batches too; that run's drift retrain serves both
    assert loop.airflow.asset_events(DECAY_ASSET_URI) == []
    assert [r["run_type"] for r in loop.airflow.dag_runs("retrain")] == ["asset_triggered"]
    assert loop.airflow.dag_runs("drift_monitor")[-1]["dag_run_id"] == run_id
    decisions = loop.retrain_runs()[len(decisions_before) :]
    assert len(decisions) == 1 and decisions[0][1] != "skipped", decisions
    new_versions = loop.versions()[len(versions_before) :]
    assert [v["version"] for v in new_versions] == [decisions[0][2]]


def test_the_mlflow_server_down_for_a_minute_during_retrain_and_serving(
    loop: AirflowLoop, tmp_path: Path
) -> None:
    """The MLflow server stops after ``train`` and before ``evaluate`` (the DAG is held paused in
    between, so the order is certain) and stays down for a minute while a prediction server on
    the same registry answers 8 clients. evaluate fails with a sentence, nothing is registered
    and no alias moves; ``/predict`` answers all along with the versions it loaded, each worker
    logs its failed poll once, retries every poll and says when the registry answers again;
    with the server back, Airflow's retry completes the run with one decision."""
    loop.land_and_ingest("traffic")
    versions, decisions = loop.versions(), loop.retrain_runs()
    loaded = {v["version"] for v in versions if v["aliases"] != "-"}  # Production, Staging
    logged_before = logged_requests(loop.settings.database_url)
    run_id = loop.airflow.trigger("retrain")
    # MLflow's client would retry one call for minutes with backoff: the server's poll is the
    # retry here, so one quick try per poll (a deployment may keep MLflow's defaults)
    env = loop.server_env(
        DRIFTLOOP_SERVING__POLL_SECONDS="1",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
    )
    with PredictionServer(env, tmp_path / "server", workers=SERVER_WORKERS) as server:
        loop.wait_for_task("retrain", run_id, "train", {"running"}, 120)
        loop.set_paused("retrain", True)
        loop.wait_for_task("retrain", run_id, "train", {"success"}, RUN_TIMEOUT)
        with closed_loop_load(server.url, loop.settings, clients=8) as load:
            load.wait_for(200, timeout=120)
            loop.mlflow.stop()
            down_until = time.monotonic() + OUTAGE_SECONDS
            loop.set_paused("retrain", False)
            assert loop.wait_for_task("retrain", run_id, "evaluate", {"up_for_retry"}, 120) == (
                "up_for_retry",
                1,
            )
            loop.set_paused("retrain", True)  # the retry waits for the server
            wait_until(
                lambda: True if _failed_polls(server) >= SERVER_WORKERS else None,
                timeout=60,
                what="each worker to log its failed poll",
                interval=0.5,
            )
            while time.monotonic() < down_until:  # the outage lasts its minute, under load
                load.wait_for(len(load.answered) + 50, timeout=30)
            during = len(load.answered)
            loop.restart_mlflow()
            wait_until(
                lambda: (
                    True
                    if server.log_tail(100_000).count("model refresh works again") >= SERVER_WORKERS
                    else None
                ),
                timeout=60,
                what="each worker to reach the registry again",
                interval=0.5,
            )
            load.wait_for(during + 100, timeout=60)
        server_log = server.log_tail(100_000)
    seen = describe(load)
    assert not load.refused and not load.dropped, seen
    assert set(load.versions) <= loaded and "1" in load.versions, seen  # the loaded versions
    # once per worker per outage, though it polled about sixty times
    assert server_log.count("model refresh failed") == SERVER_WORKERS, server_log[-3000:]
    logged = logged_requests(loop.settings.database_url) - logged_before
    assert all(logged[r] == 1 for r in load.answered) and len(logged) == len(load.answered)

    log = loop.task_log(run_id, "evaluate", 1)
    assert f"the MLflow server at {loop.mlflow.url} does not answer; retry once it is back" in log
    assert loop.versions() == versions  # nothing registered, no alias moved
    assert loop.retrain_runs() == decisions
    loop.set_paused("retrain", False)
    assert loop.airflow.wait_for_run("retrain", run_id, RUN_TIMEOUT) == "success", describe_runs(
        loop, "retrain"
    )
    assert loop.task_state("retrain", run_id, "evaluate") == ("success", 2)
    new_decisions = loop.retrain_runs()[len(decisions) :]
    assert len(new_decisions) == 1 and new_decisions[0][1] != "skipped", new_decisions
    after = loop.versions()
    new_versions = after[len(versions) :]
    assert [v["version"] for v in new_versions] == [new_decisions[0][2]]
    # the versions before keep their roles, but for a Staging one the new challenger replaced
    before_roles, after_roles = _roles(versions), _roles(after)
    assert after_roles["1"] == before_roles["1"] == ("production", "production")


def _failed_polls(server: PredictionServer) -> int:
    return server.log_tail(100_000).count("model refresh failed")
