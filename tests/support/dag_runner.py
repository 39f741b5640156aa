"""Run a DAG with ``dag.test()`` in a fresh process and print what happened as JSON.

Airflow reads its configuration at import time, so the tests start this script with the
environment of a throw-away AIRFLOW_HOME instead of importing Airflow themselves.
Usage: python tests/support/dag_runner.py DAGS_FOLDER DAG_ID '{"conf": "json"}'
"""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetDagRunQueue, AssetEvent
from airflow.utils.session import create_session


def main(dags_folder: str, dag_id: str, conf: str) -> None:
    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    run = bag.get_dag(dag_id).test(run_conf=json.loads(conf))
    with create_session() as session:
        events = [
            {"uri": e.asset.uri, "extra": e.extra}
            for e in session.query(AssetEvent).order_by(AssetEvent.id)
        ]
        instances = run.get_task_instances(session=session)
        tasks = {ti.task_id: str(ti.state) for ti in instances}
        # a mapped task's instances, one state each in map index order
        mapped: dict[str, list[str]] = {}
        for ti in sorted(instances, key=lambda ti: ti.map_index):
            if ti.map_index >= 0:
                mapped.setdefault(ti.task_id, []).append(str(ti.state))
        # DAGs the scheduler will start because of those events
        queued = sorted({q.target_dag_id for q in session.query(AssetDagRunQueue)})
    result = {
        "state": str(run.state),
        "events": events,
        "tasks": tasks,
        "mapped": mapped,
        "queued": queued,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
