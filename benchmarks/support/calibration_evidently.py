"""The calibration benchmark's Evidently side: its plan, its child process, its results.

Why: Evidently runs in its own virtualenv (``var/bench-evidently-venv``), so its verdicts are
computed in a child process (the script again, with ``--child``) beside driftloop's workers.
The parent writes the child a plan (each cell's rows as parquet, the batches' row indices as
npz); the child runs Evidently's per-column drift function (on each cell's first batches
also the full ``Report([DataDriftPreset()])``, to check the two agree) and writes JSON that
the parent turns into tallies. The child imports the script, so no ``calibration_*`` module
may import driftloop at module level: Evidently's virtualenv does not have it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from support.calibration_data import (
    REFERENCE_EVERY,
    Population,
    PowerCell,
    batch_rng,
    power_rng,
    run_dir,
    split_rng,
)
from support.calibration_tally import Tally
from support.common import EVIDENTLY_PYTHON, ROOT, child_env, ensure_evidently_venv


def start_evidently_child(
    script: Path,
    data: list[Population],
    cells: list[PowerCell],
    args: argparse.Namespace,
    out: Path,
    started: float,
) -> subprocess.Popen[bytes]:
    """Evidently's verdicts, beside driftloop's: ``script --child`` in Evidently's virtualenv.

    The child gets the plan's path, ``out`` for its results and a deadline: ``--stop-after``
    or ``--evidently-timeout`` after ``started``, whichever is earlier. Its output goes to
    ``evidently.log`` in the run's work directory.
    """
    ensure_evidently_venv()
    plan_path, _ = write_plan(data, cells, args)
    if not args.resume:
        out.unlink(missing_ok=True)
    deadline = started + (60 * args.stop_after if args.stop_after else args.evidently_timeout)
    with (run_dir(args) / "evidently.log").open("a") as log:
        return subprocess.Popen(
            [str(EVIDENTLY_PYTHON), str(script), "--child", str(plan_path),
             "--out", str(out), "--deadline", str(min(deadline, started + args.evidently_timeout))],
            cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def write_plan(
    data: list[Population], cells: list[PowerCell], args: argparse.Namespace
) -> tuple[Path, list[dict[str, Any]]]:
    """Files for the Evidently child: per cell a pool of rows and the jobs' row indices."""
    work = run_dir(args)
    work.mkdir(parents=True, exist_ok=True)
    plan: list[dict[str, Any]] = []
    for d, population in enumerate(data):
        pool = work / f"pool-{population.name}.parquet"
        population.frame.to_parquet(pool, index=False)
        numerical = [c for c in population.frame.columns if c not in population.categorical]
        for rows in args.sizes:
            count = min(args.evidently_batches, args.batches)
            arrays = {}
            for b in range(count):
                reference_rows, rest = population.rows(split_rng(args.seed, d, b % args.splits))
                arrays[f"reference_{b}"] = reference_rows
                arrays[f"batch_{b}"] = population.batch(
                    rest, batch_rng(args.seed, d, rows, b), rows
                )
            jobs = work / f"jobs-{population.name}-{rows}.npz"
            np.savez(jobs, **arrays)
            plan.append(
                {
                    "key": f"{population.name}:{rows}",
                    "pool": str(pool),
                    "jobs": str(jobs),
                    "count": count,
                    "numerical": numerical,
                    "categorical": population.categorical,
                    "reports": args.evidently_reports,
                }
            )
    for c, cell in enumerate(cells):
        count = min(args.evidently_batches, cell.batches, cell.evidently_cap or cell.batches)
        frames, arrays, at = [], {}, 0
        references: dict[int, tuple[int, int]] = {}
        for b in range(count):
            r = b // REFERENCE_EVERY
            if r not in references:
                frames.append(cell.frame(power_rng(args.seed, c, 0, r), True))
                references[r] = (at, at + cell.reference_rows)
                at += cell.reference_rows
            frames.append(cell.frame(power_rng(args.seed, c, 1, b), False))
            arrays[f"reference_{b}"] = np.arange(*references[r])
            arrays[f"batch_{b}"] = np.arange(at, at + cell.rows)
            at += cell.rows
        pool = work / f"pool-{cell.key}.parquet"
        if frames:
            pd.concat(frames, ignore_index=True).to_parquet(pool, index=False)
        del frames
        jobs = work / f"jobs-{cell.key}.npz"
        np.savez(jobs, **arrays)
        plan.append(
            {
                "key": cell.key,
                "pool": str(pool),
                "jobs": str(jobs),
                "count": count,
                "numerical": [x.name for x in cell.columns if not x.categorical],
                "categorical": cell.categorical,
                "reports": args.evidently_reports if cell.evidently_reports else 0,
            }
        )
    path = work / "plan.json"
    path.write_text(json.dumps(plan, indent=1))
    return path, plan


def evidently_columns(
    current: pd.DataFrame, reference: pd.DataFrame, numerical: list[str], categorical_: list[str]
) -> dict[str, dict[str, Any]]:
    """Each column's drift as DataDriftPreset's ValueDrift computes it, without its plots."""
    from evidently.legacy.calculations.data_drift import get_one_column_drift
    from evidently.legacy.core import ColumnType
    from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns
    from evidently.legacy.options.data_drift import DataDriftOptions

    results = {}
    for name in [*numerical, *categorical_]:
        kind = ColumnType.Categorical if name in categorical_ else ColumnType.Numerical
        drift = get_one_column_drift(
            current_data=current,
            reference_data=reference,
            column_name=name,
            options=DataDriftOptions(all_features_stattest=None, all_features_threshold=None),
            dataset_columns=DatasetColumns(
                utility_columns=DatasetUtilityColumns(
                    date=None, id=None, target=None, prediction=None
                ),
                target_type=None,
                task=None,
                num_feature_names=[name] if kind == ColumnType.Numerical else [],
                cat_feature_names=[name] if kind == ColumnType.Categorical else [],
                text_feature_names=[],
                datetime_feature_names=[],
                target_names=None,
            ),
            column_type=kind,
            agg_data=False,
        )
        results[name] = {
            "score": float(drift.drift_score),
            "drifted": bool(drift.drift_detected),
            "method": drift.stattest_name,
        }
    return results


def evidently_report(
    current: pd.DataFrame, reference: pd.DataFrame, numerical: list[str], categorical_: list[str]
) -> tuple[dict[str, float], float]:
    """``Report([DataDriftPreset()])`` in full: per-column scores and the drifted count."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical_)
    snapshot = (
        Report([DataDriftPreset()])
        .run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        .dict()
    )
    scores, count = {}, math.nan
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
        elif config["type"].endswith("DriftedColumnsCount"):
            count = float(metric["value"]["count"])
    return scores, count


def evidently_child(plan_path: Path, out: Path, deadline: float) -> None:
    """Round-robin over the cells, one batch of each per round, until done or the deadline."""
    import warnings
    from importlib.metadata import version

    warnings.filterwarnings("ignore")
    plan = json.loads(plan_path.read_text())
    pools = {cell["pool"]: None for cell in plan}
    results: dict[str, list[dict[str, Any]]] = {cell["key"]: [] for cell in plan}
    if out.is_file():  # --resume: go on after the last full round of an earlier run
        earlier = json.loads(out.read_text())["results"]
        if set(earlier) == set(results):
            counts = {cell["key"]: cell["count"] for cell in plan}
            # rounds every cell finished (a cell with fewer batches is done after its last)
            full = min(
                (len(v) for k, v in earlier.items() if len(v) < counts[k]),
                default=max(counts.values(), default=0),
            )
            results = {k: v[:full] for k, v in earlier.items()}
    jobs = {cell["key"]: np.load(cell["jobs"]) for cell in plan}
    if plan and plan[0]["count"]:  # imports and first-call costs, kept out of the timings
        pool = pd.read_parquet(plan[0]["pool"])
        first = jobs[plan[0]["key"]]
        evidently_columns(
            pool.iloc[first["batch_0"]].reset_index(drop=True),
            pool.iloc[first["reference_0"]].reset_index(drop=True),
            plan[0]["numerical"],
            plan[0]["categorical"],
        )
        del pool
    started = time.time()
    meta = {"evidently": version("evidently"), "stopped_at_deadline": False}
    rounds = max((cell["count"] for cell in plan), default=0)
    first_round = min(
        (len(results[c["key"]]) for c in plan if len(results[c["key"]]) < c["count"]),
        default=rounds,
    )
    for b in range(first_round, rounds):
        if time.time() > deadline:
            meta["stopped_at_deadline"] = True
            break
        for cell in plan:
            if b >= cell["count"]:
                continue
            pool = pools[cell["pool"]]
            if pool is None:
                pool = pools[cell["pool"]] = pd.read_parquet(cell["pool"])
            reference = pool.iloc[jobs[cell["key"]][f"reference_{b}"]].reset_index(drop=True)
            current = pool.iloc[jobs[cell["key"]][f"batch_{b}"]].reset_index(drop=True)
            start = time.perf_counter()
            columns = evidently_columns(current, reference, cell["numerical"], cell["categorical"])
            record: dict[str, Any] = {"columns": columns, "seconds": time.perf_counter() - start}
            if b < cell["reports"]:
                start = time.perf_counter()
                scores, count = evidently_report(
                    current, reference, cell["numerical"], cell["categorical"]
                )
                record["report_seconds"] = time.perf_counter() - start
                record["report_agrees"] = count == sum(
                    c["drifted"] for c in columns.values()
                ) and all(
                    math.isclose(scores[name], c["score"], rel_tol=1e-9, abs_tol=1e-12)
                    for name, c in columns.items()
                )
            results[cell["key"]].append(record)
        meta["seconds"] = time.time() - started
        write_atomic(out, {"meta": meta, "results": results})
        needed = {cell["pool"] for cell in plan if b + 1 < cell["count"]}
        for name in pools:  # the 1M-row pool is large: keep only the pools still needed
            if name not in needed:
                pools[name] = None
    meta["seconds"] = time.time() - started
    write_atomic(out, {"meta": meta, "results": results})


def write_atomic(path: Path, value: Any) -> None:
    """Write JSON so that a reader (or a kill) never sees half a file."""
    staged = path.with_suffix(".part")
    staged.write_text(json.dumps(value))
    staged.replace(path)


def evidently_tally(records: list[dict[str, Any]]) -> tuple[Tally, int, int, float]:
    """A tally of Evidently's verdicts; the full reports run, how many agreed, their mean time."""
    tally, reports, agreed, report_seconds = Tally(), 0, 0, 0.0
    for record in records:
        columns = record["columns"]
        flagged = [name for name, c in columns.items() if c["drifted"]]
        share = len(flagged) / len(columns)
        tally.add("drift" if share >= 0.5 else "no_drift", flagged, len(columns), record["seconds"])
        if "report_agrees" in record:
            reports += 1
            agreed += record["report_agrees"]
            report_seconds += record["report_seconds"]
    return tally, reports, agreed, report_seconds / reports if reports else math.nan


def evidently_methods(records: list[dict[str, Any]]) -> str:
    """The statistical tests Evidently chose, counted over a cell's first batch."""
    methods: dict[str, int] = {}
    for record in records[:1]:
        for column in record["columns"].values():
            methods[column["method"]] = methods.get(column["method"], 0) + 1
    return ", ".join(f"{m} x{k}" for m, k in methods.items())
