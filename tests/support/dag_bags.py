"""Parse DAG folders with Airflow's DagBag in one fresh process and print what each holds as JSON.

Airflow reads its configuration at import time, so tests start this script with a throw-away
AIRFLOW_HOME instead of importing Airflow themselves. Each folder is parsed with its own
``DRIFTLOOP_CONFIG`` (the DAG files read it when they are parsed). For each folder: the import
errors (file name relative to the folder: last line of the error), and each DAG's tags, file,
schedule Assets, outlet Assets, task queues and the arguments its ``train`` task passes on.

With ``--inbox`` a folder's entry also lists what each ``batch_score`` DAG's ``files_to_score``
task returns when called as its task would be: the files of its own model's inbox.
Usage: python tests/support/dag_bags.py '[{"dags": "...", "config": "..."}, ...]'
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag


def assets(condition) -> list[str]:
    """The URIs an Asset condition names (``a | b``, ``[a]``), in order."""
    if condition is None:
        return []
    inner = getattr(condition, "objects", None)
    if inner is None:
        return [condition.uri]
    return [uri for each in inner for uri in assets(each)]


def describe(folder: dict) -> dict:
    os.environ["DRIFTLOOP_CONFIG"] = folder["config"]
    bag = DagBag(dag_folder=folder["dags"])
    root = Path(folder["dags"])
    dags = {}
    for dag_id, dag in sorted(bag.dags.items()):
        train = dag.task_dict.get("train")
        dags[dag_id] = {
            "tags": sorted(dag.tags),
            "file": Path(dag.fileloc).relative_to(root).as_posix(),
            "schedule": assets(getattr(dag.timetable, "asset_condition", None)),
            "outlets": sorted(o.uri for t in dag.tasks for o in t.outlets),
            "queues": {t.task_id: t.queue for t in dag.tasks},
            "train_args": [a for a in train.op_args if isinstance(a, str | None)]
            if train
            else None,
        }
        if folder.get("inbox") and dag_id.startswith("batch_score"):
            files = dag.task_dict["files_to_score"].python_callable(params={})
            dags[dag_id]["inbox"] = [Path(f).name for f in files]
    errors = {
        Path(path).relative_to(root).as_posix() if Path(path).is_absolute() else path: text
        for path, text in bag.import_errors.items()
    }
    return {"errors": errors, "dags": dags}


if __name__ == "__main__":
    print("RESULT " + json.dumps([describe(folder) for folder in json.loads(sys.argv[1])]))
