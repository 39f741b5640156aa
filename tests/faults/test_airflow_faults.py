"""Faults at the Airflow level (issue 28), injected into the real processes of one shared stack
(tests/faults/airflow_loop.py): the scheduler killed mid-run, a Celery worker killed while it
trains, the MLflow server down during ``retrain``. Each test waits for the states Airflow's REST
API reports, never for a time, and checks what driftloop recorded: nothing twice, nothing lost,
nothing half-done in the registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from driftloop.events import DECAY_ASSET_URI, DRIFT_ASSET_URI
from driftloop.stack.processes import wait_until
from driftloop.storage import Batch, DriftCheck

from .airflow_loop import AirflowLoop, airflow_loop, describe_runs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
RUN_TIMEOUT = 240.0  # seconds; a bound on waiting, not a pace


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowLoop]:
    with airflow_loop(tmp_path_factory.mktemp("airflow-faults")) as running:
        yield running


def _roles(versions: list[dict[str, str]]) -> dict[str, tuple[str, str]]:
    return {v["version"]: (v["aliases"], v["gate"]) for v in versions}


def test_a_scheduler_killed_mid_run_records_nothing_twice(loop: AirflowLoop) -> None:
    """kill -9 of the scheduler while drift_monitor's checks run; a new scheduler finishes the
    run; one drift check per batch, one drift event, one retrain and one decision."""
    decisions_before = loop.retrain_runs()
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
    )
    assert loop.airflow.wait_for_run("retrain", retrain["dag_run_id"], RUN_TIMEOUT) == "success"
    with loop.engine.connect() as connection:
        batches = connection.execute(sa.select(Batch.id)).scalars().all()
        checks = Counter(connection.execute(sa.select(DriftCheck.batch_id)).scalars())
    assert len(batches) == 2 and checks == Counter(batches), (batches, checks)
    assert len(loop.airflow.asset_events(DRIFT_ASSET_URI)) == 1
    # Production decays on these batches too; that run's drift retrain serves both
    assert loop.airflow.asset_events(DECAY_ASSET_URI) == []
    assert [r["run_type"] for r in loop.airflow.dag_runs("retrain")] == ["asset_triggered"]
    decisions = loop.retrain_runs()[len(decisions_before) :]
    assert len(decisions) == 1, decisions
    assert loop.airflow.dag_runs("drift_monitor")[-1]["dag_run_id"] == run_id


def test_a_worker_killed_while_training_trains_once_more(loop: AirflowLoop) -> None:
    """kill -9 of the training worker (its task with it) while ``train`` runs: the heartbeat
    stops, the scheduler fails that try, the retry runs on the new worker; one decision and at
    most one new version."""
    loop.land_and_ingest("traffic")  # new data: the same would be skipped as trained on
    versions, decisions = loop.versions(), loop.retrain_runs()
    run_id = loop.airflow.trigger("retrain")
    loop.wait_for_task("retrain", run_id, "train", {"running"}, 120)
    loop.replace_training_worker()
    assert loop.airflow.wait_for_run("retrain", run_id, RUN_TIMEOUT) == "success", describe_runs(
        loop, "retrain"
    )
    state, tries = loop.task_state("retrain", run_id, "train")
    assert (state, tries) == ("success", 2)
    assert "train" in loop.training.executed("training-2")
    new_decisions = loop.retrain_runs()[len(decisions) :]
    assert len(new_decisions) == 1 and new_decisions[0][1] != "skipped", new_decisions
    new_versions = loop.versions()[len(versions) :]
    assert len(new_versions) <= 1, new_versions
    assert [v["version"] for v in new_versions] == [new_decisions[0][2]]


def test_the_mlflow_server_down_during_retrain(loop: AirflowLoop) -> None:
    """The MLflow server stops after ``train`` and before ``evaluate`` (the DAG is held paused in
    between, so the order is certain): evaluate fails with a sentence, nothing is registered and
    no alias moves; with the server back, Airflow's retry completes the run with one decision."""
    loop.land_and_ingest("traffic")
    versions, decisions = loop.versions(), loop.retrain_runs()
    run_id = loop.airflow.trigger("retrain")
    loop.wait_for_task("retrain", run_id, "train", {"running"}, 120)
    loop.set_paused("retrain", True)
    loop.wait_for_task("retrain", run_id, "train", {"success"}, RUN_TIMEOUT)
    loop.mlflow.stop()
    loop.set_paused("retrain", False)
    assert loop.wait_for_task("retrain", run_id, "evaluate", {"up_for_retry"}, 120) == (
        "up_for_retry",
        1,
    )
    loop.set_paused("retrain", True)  # the retry waits for the server
    log = loop.task_log(run_id, "evaluate", 1)
    assert f"the MLflow server at {loop.mlflow.url} does not answer; retry once it is back" in log
    loop.restart_mlflow()
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
