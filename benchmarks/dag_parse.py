"""DAG parse time with many models (issue 30, items 2 and 6): every DAG file under 1 s.

Why: a config with ``models:`` gives each model its own file, ``dags/models/<name>.py``, which
loads that model's settings from the whole config and builds its five DAGs, while the five
files of ``dags/`` only check that every model has its file. Airflow's DAG processor parses
every file again and again, so each must stay cheap however many models the config declares.

What: a throw-away project with ``--models`` models (the three of
``examples/three_models.yaml``, repeated under new names), the project's ``dags/`` copied into
it and the model files written by
``driftloop.orchestration.model_dags.write_model_files``. Each parse runs in a fresh
interpreter that imports Airflow's DagBag first (the DAG processor has Airflow loaded when it
forks a parse), then times ``DagBag(dag_folder=<file>)``: CPU and wall seconds, DAGs
found and import errors. Files: the five files of ``dags/`` and three model files (first,
middle, last; they differ only in their name) with the many-model config, and for reference the
five files with the repository's single-model ``driftloop.yaml``; ``--rounds`` rounds,
interleaved, with the 1-minute load average of each. Mean and 95% interval (Student's t) over
the rounds, and the maximum. The verdict is on the slowest parse's CPU time, the file's own
cost (a loaded 2-core machine stretches wall time with other work); wall time is printed
beside it, with the load.

    .venv/bin/python benchmarks/dag_parse.py                 # 50 models, 5 rounds (~4 min)
    .venv/bin/python benchmarks/dag_parse.py --smoke         # 5 models, 1 round, 3 parses
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import yaml
from support.common import ROOT
from support.dags import dag_files, interval, parse

from driftloop.orchestration.model_dags import KINDS

EXAMPLE = ROOT / "examples" / "three_models.yaml"
TARGET_SECONDS = 1.0


def many_models_config(folder: Path, count: int) -> Path:
    """The example's project sections with ``count`` models cycling through its three
    entries (``m000_white_wine``, ``m001_red_wine``, ...); data paths made absolute."""
    document = yaml.safe_load(EXAMPLE.read_text())
    examples = document.pop("models")
    document["data"]["path"] = str((EXAMPLE.parent / document["data"]["path"]).resolve())
    document["storage"]["home"] = str(folder / "var")
    models = {}
    for index in range(count):
        name, entry = list(examples.items())[index % len(examples)]
        entry = json.loads(json.dumps(entry or {}))
        if "path" in entry.get("data", {}):
            entry["data"]["path"] = str((EXAMPLE.parent / entry["data"]["path"]).resolve())
        models[f"m{index:03d}_{name}"] = entry
    document["models"] = models
    config = folder / "driftloop.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def project(folder: Path, count: int, samples: int = 3) -> tuple[Path, list[Path]]:
    """The project's dags/ with one model file per model; the config and the files to time
    (the five of dags/ and ``samples`` model files: first, middle, last)."""
    folder.mkdir(parents=True)
    config = many_models_config(folder, count)
    return config, dag_files(folder, config, samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="5 models, 1 round, 3 parses")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.rounds = 5, 1

    with tempfile.TemporaryDirectory(prefix="driftloop-dag-parse-") as tmp:
        folder = Path(tmp)
        config, many = project(folder / "many", args.models, 1 if args.smoke else 3)
        if args.smoke:  # one file of dags/ and one model file with many models, one single
            many = [many[0], many[-1]]
        single = [ROOT / "dags" / f"{kind}.py" for kind in KINDS][: 1 if args.smoke else None]
        cases = [("many", path, config) for path in many] + [
            ("single", path, ROOT / "driftloop.yaml") for path in single
        ]
        samples: dict[tuple[str, str], list[dict]] = {}
        loads = []
        for round_ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            order = cases if round_ % 2 == 0 else cases[::-1]
            for mode, path, cfg in order:
                result = parse(path, cfg, folder / "airflow")
                samples.setdefault((mode, path.relative_to(path.parents[1]).as_posix()), []).append(
                    result
                )
            print(f"round {round_ + 1}/{args.rounds} done, load1 {loads[-1]:.2f}", flush=True)

    rows, worst, worst_cpu = [], 0.0, 0.0
    for (mode, name), results in samples.items():
        errors = sorted({e.strip().splitlines()[-1] for r in results for e in r["errors"]})
        cpu_mean, cpu_half = interval([r["cpu"] for r in results])
        wall_mean, wall_half = interval([r["wall"] for r in results])
        wall_max = max(r["wall"] for r in results)
        worst = max(worst, wall_max)
        worst_cpu = max(worst_cpu, max(r["cpu"] for r in results))
        rows.append(
            {
                "config": f"{args.models} models" if mode == "many" else "single model",
                "file": name,
                "dags": results[0]["dags"],
                "errors": errors,
                "cpu_ms": (cpu_mean * 1000, cpu_half * 1000),
                "wall_ms": (wall_mean * 1000, wall_half * 1000),
                "wall_max_ms": wall_max * 1000,
            }
        )
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.models} models, {args.rounds} rounds; 1-min load "
        f"average per round: {', '.join(f'{x:.2f}' for x in loads)}\n"
    )
    print("| config | file | DAGs | CPU ms (95% CI) | wall ms (95% CI) | wall max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        cpu, wall = row["cpu_ms"], row["wall_ms"]
        print(
            f"| {row['config']} | `{row['file']}` | {row['dags']} | {cpu[0]:.0f} ± {cpu[1]:.0f} "
            f"| {wall[0]:.0f} ± {wall[1]:.0f} | {row['wall_max_ms']:.0f} |"
        )
        for error in row["errors"]:
            print(f"|  | import error: {error} | | | | |")
    errors = any(row["errors"] for row in rows)
    met = worst_cpu < TARGET_SECONDS and not errors
    print(
        f"\nslowest parse: {worst_cpu * 1000:.0f} ms CPU, {worst * 1000:.0f} ms wall; target < 1 s "
        f"{'met' if met else 'NOT met'} on CPU (the file's own cost), "
        f"{'met' if worst < TARGET_SECONDS and not errors else 'NOT met'} on wall time at this "
        "load"
    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load1": loads, "met": met}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
