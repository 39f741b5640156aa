"""DAG files parsed as Airflow's DAG processor parses them, each in a fresh interpreter.

Why: ``dag_parse.py`` and ``many_models.py`` both time the DAG files of a many-model config;
the way a parse is timed (Airflow's DagBag imported first, as the processor has it loaded when
it forks a parse; CPU and wall time of ``DagBag(dag_folder=<file>)``) is written once here.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from support.common import ROOT

CHILD = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
wall, cpu = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=sys.argv[1])
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print("RESULT " + json.dumps({"cpu": cpu, "wall": wall, "dags": len(bag.dag_ids),
                              "errors": list(bag.import_errors.values())}))
"""


def dag_files(folder: Path, config: Path, samples: int = 3) -> list[Path]:
    """The project's dags/ copied into ``folder`` with one model file per model of
    ``config``; the files to time: the five of dags/ and ``samples`` model files (first,
    middle, last)."""
    from driftloop.orchestration.model_dags import KINDS, MODELS_FOLDER, write_model_files

    dags = folder / "dags"
    dags.mkdir(parents=True)
    for kind in KINDS:
        shutil.copy(ROOT / "dags" / f"{kind}.py", dags / f"{kind}.py")
    write_model_files(config, dags)
    models = sorted((dags / MODELS_FOLDER).glob("*.py"))
    sample = [models[0], models[len(models) // 2], models[-1]][:samples]
    return [dags / f"{kind}.py" for kind in KINDS] + sample


def parse(path: Path, config: Path, home: Path) -> dict:
    """One parse of ``path`` with ``config``: CPU and wall seconds, DAGs, import errors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DRIFTLOOP_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(path.parent),
        DRIFTLOOP_CONFIG=str(config),
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"parse of {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (Student's t; 0 for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    sem = statistics.stdev(values) / len(values) ** 0.5
    return mean, float(stats.t.ppf(0.975, len(values) - 1)) * sem
