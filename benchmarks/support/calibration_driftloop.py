"""The calibration benchmark's driftloop side: checks in worker processes, with a checkpoint.

Why: driftloop checks thousands of batches and builds dozens of calibrated profiles, which
takes tens of minutes on a shared machine; here that work is cut into tasks (one reference and
its batches, or one power cell) that run in ``--workers`` forked processes and are kept as they
finish, so ``--resume``, ``--stop-after`` and ``--report-only`` work. The task functions live
in this importable module so a worker pool can refer to them by name.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def drift_settings() -> Any:
    """driftloop's defaults (calibrated mode): what the benchmark measures."""
    from driftloop.config import DriftSettings

    return DriftSettings()


def profile_of(frame: pd.DataFrame, categorical_: list[str], settings: Any) -> Any:
    """A reference's calibrated profile, built as the library builds it."""
    from driftloop.drift.profile import build_profile

    return build_profile(
        frame,
        categorical=categorical_,
        target=None,
        target_is_categorical=False,
        bins=settings.bins,
        exact_max=settings.exact_reference_max,
        statistics=settings.statistics,
        calibration_draws=settings.draws,
    )


def check(profile: Any, batch: pd.DataFrame, settings: Any, tally: Tally) -> None:
    """One batch's verdict, counted and timed into ``tally``."""
    from driftloop.drift.engine import check_drift

    start = time.perf_counter()
    verdict = check_drift(profile, batch, settings)
    tally.add(
        verdict.status,
        verdict.drifted_features,
        len(verdict.tested_features),
        time.perf_counter() - start,
    )


_STATE: dict[str, Any] = {}
"""The data, cells and arguments, set before worker processes fork (they inherit it)."""


def false_alarm_task(d: int, split: int) -> tuple[dict[int, Tally], float]:
    """One reference of one data set, and every batch (of every size) that uses it."""
    population, args, settings = _STATE["data"][d], _STATE["args"], drift_settings()
    reference_rows, rest = population.rows(split_rng(args.seed, d, split))
    reference = population.frame.iloc[reference_rows].reset_index(drop=True)
    start = time.perf_counter()
    profile = profile_of(reference, population.categorical, settings)
    build = time.perf_counter() - start
    tallies = {rows: Tally() for rows in args.sizes}
    for rows in args.sizes:
        for b in range(split, args.batches, args.splits):
            picked = population.batch(rest, batch_rng(args.seed, d, rows, b), rows)
            batch = population.frame.iloc[picked].reset_index(drop=True)
            check(profile, batch, settings, tallies[rows])
    return tallies, build


def power_task(c: int) -> Tally:
    """Every batch of one power cell, with a new reference every REFERENCE_EVERY batches."""
    cell, args, settings = _STATE["cells"][c], _STATE["args"], drift_settings()
    tally, profile = Tally(), None
    for b in range(cell.batches):
        if b % REFERENCE_EVERY == 0:
            profile = None  # the old one's memory goes before the next is drawn (1M rows)
            reference = cell.frame(power_rng(args.seed, c, 0, b // REFERENCE_EVERY), True)
            profile = profile_of(reference, cell.categorical, settings)
            del reference
        batch = cell.frame(power_rng(args.seed, c, 1, b), False)
        check(profile, batch, settings, tally)
    return tally


def run_task(task: tuple[str, int, int]) -> tuple[tuple[str, int, int], Any]:
    """One task, by kind; the task comes back with its result (the pool reorders)."""
    kind, first, second = task
    return task, power_task(first) if kind == "power" else false_alarm_task(first, second)


def checkpoint_path(args: argparse.Namespace) -> Path:
    """Where finished driftloop tasks are kept."""
    return run_dir(args) / "driftloop-tasks.jsonl"


def load_checkpoint(path: Path) -> dict[tuple[str, int, int], Any]:
    """Finished tasks of an earlier run of the same configuration (``--resume``)."""
    done: dict[tuple[str, int, int], Any] = {}
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        record = json.loads(line)
        kind, first, second = record["task"]
        if kind == "power":
            done[kind, first, second] = Tally(**record["tally"])
        else:
            tallies = {int(rows): Tally(**t) for rows, t in record["tallies"].items()}
            done[kind, first, second] = (tallies, record["build"])
    return done


def save_task(path: Path, task: tuple[str, int, int], result: Any) -> None:
    """Append a finished task to the checkpoint, one JSON line."""
    if task[0] == "power":
        record = {"task": task, "tally": vars(result)}
    else:
        record = {
            "task": task,
            "tallies": {rows: vars(t) for rows, t in result[0].items()},
            "build": result[1],
        }
    with path.open("a") as stored:
        stored.write(json.dumps(record) + "\n")


def run_driftloop(
    data: list[Population],
    cells: list[PowerCell],
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> tuple[dict[tuple[str, int], Tally], dict[str, float], dict[str, Tally], str]:
    """Every batch of every cell, in ``--workers`` processes (the power cells first: longest).

    Finished tasks (a reference and its batches, or a power cell) are appended to a checkpoint,
    so ``--resume`` goes on where a run stopped and ``--report-only`` prints what is done.
    ``--stop-after`` ends the run at a time, with the tables of the tasks finished by then.
    """
    _STATE.update(data=data, cells=cells, args=args)
    tasks = [("power", c, 0) for c in range(len(cells))]
    tasks += [("false", d, split) for split in range(args.splits) for d in range(len(data))]
    run_dir(args).mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(args)
    if not (args.resume or args.report_only):
        path.unlink(missing_ok=True)
    done = load_checkpoint(path)
    todo = [] if args.report_only else [task for task in tasks if task not in done]
    pool = None
    if args.workers > 1 and todo:
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(args.workers)
        results = pool.imap_unordered(run_task, todo)
    else:
        results = map(run_task, todo)
    deadline = time.time() + 60 * args.stop_after if args.stop_after else math.inf
    for count, (task, result) in enumerate(results, start=1):
        done[task] = result
        save_task(path, task, result)
        if count % max(1, len(todo) // 10) == 0 or count == len(todo):
            progress(f"driftloop: {count} of {len(todo)} tasks")
        if time.time() > deadline:
            progress(f"driftloop: stopped by --stop-after after {count} of {len(todo)} tasks")
            break
    if pool is not None:
        pool.terminate()
        pool.join()
    tallies = {(p.name, n): Tally() for p in data for n in args.sizes}
    builds = {p.name: 0.0 for p in data}
    references = {p.name: 0 for p in data}
    power: dict[str, Tally] = {}
    for (kind, first, _), result in done.items():
        if kind == "power":
            power[cells[first].key] = result
            continue
        name = data[first].name
        for rows, tally in result[0].items():
            tallies[name, rows].merge(tally)
        builds[name] += result[1]
        references[name] += 1
    builds = {name: builds[name] / max(references[name], 1) for name in builds}
    finished = sum(task in done for task in tasks)
    status = f"{finished} of {len(tasks)} driftloop tasks finished"
    return tallies, builds, power, status
