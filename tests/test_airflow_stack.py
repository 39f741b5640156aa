"""The Airflow harness end to end: an asset event from one DAG starts another, for real.

This is the wiring driftloop depends on (a producer publishes an Asset with `extra`, a consumer
is scheduled on it), exercised across the real scheduler, dag-processor, triggerer, api-server
and task workers on PostgreSQL, so later integration tests can trust `AirflowStack`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.processes import wait_until

from .support.postgres import require_postgres, temporary_database

PRODUCER = "driftloop_smoke_producer"
CONSUMER = "driftloop_smoke_consumer"
ASSET_URI = "driftloop://smoke"
EXTRA = {"rows": 42, "source": "airflow-stack-test"}

PRODUCER_DAG = f'''
from airflow.sdk import Asset, dag, task

SMOKE = Asset("{ASSET_URI}")


@dag(dag_id="{PRODUCER}", schedule=None, catchup=False)
def producer():
    @task(outlets=[SMOKE])
    def publish(*, outlet_events=None):
        outlet_events[SMOKE].extra = {EXTRA!r}

    publish()


producer()
'''

CONSUMER_DAG = f'''
from airflow.sdk import Asset, dag, task

SMOKE = Asset("{ASSET_URI}")


@dag(dag_id="{CONSUMER}", schedule=[SMOKE], catchup=False)
def consumer():
    @task
    def consume(*, triggering_asset_events=None):
        extras = [event.extra for event in triggering_asset_events[SMOKE]]
        if {EXTRA!r} not in extras:
            raise ValueError(f"the triggering event lacks the producer's extra: {{extras}}")

    consume()


consumer()
'''


@pytest.fixture
def airflow_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata, dropped afterwards."""
    require_postgres()
    with temporary_database("airflow_test") as url:
        yield url


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_asset_event_from_producer_triggers_consumer(tmp_path: Path, airflow_database: str) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "producer.py").write_text(textwrap.dedent(PRODUCER_DAG))
    (dags / "consumer.py").write_text(textwrap.dedent(CONSUMER_DAG))

    with AirflowStack(dags, tmp_path / "airflow-home", airflow_database) as stack:
        for dag_id in (PRODUCER, CONSUMER):
            stack.wait_for_dag(dag_id, timeout=60)
            stack.unpause(dag_id)

        run_id = stack.trigger(PRODUCER)
        assert stack.wait_for_run(PRODUCER, run_id, timeout=90) == "success"

        events = stack.asset_events(ASSET_URI)
        assert [event["extra"] for event in events] == [EXTRA]
        assert events[0]["source_dag_id"] == PRODUCER
        assert events[0]["source_run_id"] == run_id

        def consumer_run() -> dict[str, Any] | None:
            runs = stack.dag_runs(CONSUMER)
            return runs[0] if runs else None

        run = wait_until(consumer_run, 60, f"an asset-triggered run of {CONSUMER}")
        assert run["run_type"] == "asset_triggered"
        assert stack.wait_for_run(CONSUMER, run["dag_run_id"], timeout=90) == "success"
        assert len(stack.dag_runs(CONSUMER)) == 1
        upstream = stack.api(
            "GET", f"/dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents"
        )["asset_events"]
        assert [event["id"] for event in upstream] == [events[0]["id"]]
