"""Calibrated drift verdicts (issue 12): false alarms and power, driftloop against Evidently.

Why: issue 12 asks that a drift verdict mean the same thing at every batch size. This script
measures, in one run, the two halves of that on the same batches for driftloop (calibrated mode,
``DriftSettings()`` defaults) and Evidently's ``DataDriftPreset`` defaults:

(a) False alarms (issue 12, item 3): clean batches of 30, 50, 100, 250 and 1000 rows, drawn from
    the same rows as their reference. Per data set and batch size: the share of batches called
    "drift", the mean share of features flagged per batch, and the batches that are
    "insufficient data" (counted apart, left out of both shares). Targets: at most 1.5% each.

    - wine: ``data/wine/winequality-white.csv``, duplicate rows dropped, ``quality`` dropped
      (features only); per split a random 30% of the rows is the reference and batches are drawn
      without replacement from the other 70%.
    - cancer: scikit-learn's breast cancer data (569 rows, 30 features) plus a 5-level
      categorical column (``grade``, from ``mean radius`` plus noise, cut at uneven quantiles),
      then 1% of all values set missing at random. 569 rows are too few for disjoint reference
      and batches at 1000 rows, so the 569 rows are a population: references (1,500 rows) and
      batches are drawn from it with replacement. Batches have missing values too.
    - diabetes: scikit-learn's diabetes data (442 rows, 10 features, unscaled: ``sex`` takes two
      values, heavy ties), drawn the same way with 1,500-row references. ``target`` dropped.

    Each data set gets ``--splits`` references (new split or new draw each); batch ``b`` of every
    size uses reference ``b % splits``, so each cell's rate is over references as well as batches.

(b) Power (items 4 and 5): generated data, references and batches drawn afresh (a new reference
    every ``REFERENCE_EVERY`` batches).

    - 5,000-row batches against a 5,000-row reference, each shift in its own feature: normal mean
      +0.25 sd; normal sd x1.2; lognormal sigma 0.5 to 0.6; Poisson mean 2 to 2.35; a 5-level
      and a 50-level categorical whose level probabilities are tilted until the Jensen-Shannon
      distance (base 2) between the generating distributions is 0.1 (solved numerically). Each
      shape also has an unshifted twin in the same batch (its false alarms at 5,000 rows). Both
      tools test every column on its own, so the shifted columns do not affect each other.
    - 250-row batches against 5,000 rows: normal mean +0.5 sd (four unshifted normal twins).
    - Dataset verdict: 10 normal features, 3 of them shifted (the share 0.3 reaches driftloop's
      ``drift_share``): +0.25 sd at 5,000 rows, +0.5 sd at 250 rows (5,000-row reference).
      Evidently's verdict uses its own default ``drift_share`` (0.5), which 3 of 10 never reach.
    - Trivia: 1,000,000-row batch and reference, normal mean +0.05 sd (and an unshifted twin):
      flagged in at most 5% of batches (``--million-batches``, default 40: each batch costs
      about a second).

Evidently (0.7.23, in its own virtualenv ``var/bench-evidently-venv`` as ``drift_bench.py``
runs it) takes 5 to 15 s per ``Report([DataDriftPreset()]).run(...)`` on these frames, about
90% of it drawing plotly figures. So its verdicts are computed in a child process with the
function that preset calls for every column, ``evidently.legacy.calculations.data_drift.
get_one_column_drift``, with the preset's default options (the statistical test chosen by
reference size and column type, its default threshold), and the dataset verdict the preset's
way (share of drifted columns >= 0.5). On the first batch of every cell the full
``Report([DataDriftPreset()])`` runs too and its per-column scores and drifted count are
compared with that function's: the table prints how many of those batches agree. Evidently
runs on the first ``--evidently-batches`` batches of each cell (default 50: the very batches
driftloop sees first; driftloop always runs on all of them), one batch of every cell in turn,
in parallel with driftloop; ``--evidently-timeout`` stops it after the round in progress, and
the tables print how many batches each cell got.

Cost: driftloop checks 15,000 clean batches (a third of them with 31 columns), builds 75
calibrated profiles and runs the power cells; Evidently's part is about a quarter of that work.
On this project's shared 2-core machine at a load average of 8 to 11, driftloop's part took 30
minutes with ``--workers 3`` (Evidently beside it, stopped by ``--evidently-timeout``); on an
idle machine ``--workers 2`` or the default of one process is enough. If time runs out,
``--stop-after MINUTES`` prints the tables of what is finished, ``--resume`` goes on from the
checkpoint in ``var/bench-calibration/<configuration>/`` and ``--report-only`` reprints it.

Run from the repository root:

    .venv/bin/python benchmarks/drift_calibration.py --workers 2
    .venv/bin/python benchmarks/drift_calibration.py --quick   # a small run, a few minutes
    .venv/bin/python benchmarks/drift_calibration.py --smoke   # seconds, without Evidently

Seeds are fixed (``--seed``); the output is Markdown, with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support.common import (
    EVIDENTLY_PYTHON,
    add_smoke,
    child_env,
    ensure_evidently_venv,
    skipped_in_smoke,
)
from support.drift_data import level_probabilities, tilted

ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = ROOT / "var" / "bench-calibration"
WINE = ROOT / "data" / "wine" / "winequality-white.csv"

SEED = 20261129
SIZES = (30, 50, 100, 250, 1000)
TARGET_FALSE_ALARMS = 0.015
TARGET_POWER = 0.95
TARGET_TRIVIA = 0.05
REFERENCE_SHARE = 0.3  # wine: share of the deduplicated rows in each reference
DRAWN_REFERENCE_ROWS = 1_500  # cancer, diabetes: rows drawn (with replacement) per reference
REFERENCE_EVERY = 10  # power cells: a new reference every this many batches
JS_TARGET = 0.1
MISSING_SHARE = 0.01

Sampler = Callable[[np.random.Generator, int], np.ndarray]


# ------------------------------------------------------------------------ false-alarm data


@dataclass(frozen=True)
class Population:
    """A data set for the false-alarm table and how references and batches come from it."""

    name: str
    frame: pd.DataFrame
    categorical: list[str]
    split: bool  # True: reference and rest disjoint; False: drawn with replacement
    reference_rows: int

    def rows(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(reference rows, rows batches come from) of one split."""
        size = len(self.frame)
        if self.split:
            order = rng.permutation(size)
            return np.sort(order[: self.reference_rows]), order[self.reference_rows :]
        return rng.integers(0, size, self.reference_rows), np.arange(size)

    def batch(self, rest: np.ndarray, rng: np.random.Generator, rows: int) -> np.ndarray:
        if self.split:
            return rest[rng.choice(rest.size, rows, replace=False)]
        return rest[rng.integers(0, rest.size, rows)]


def load_wine() -> Population:
    frame = pd.read_csv(WINE, sep=";").drop_duplicates().drop(columns="quality")
    frame = frame.reset_index(drop=True)
    return Population("wine", frame, [], True, round(REFERENCE_SHARE * len(frame)))


def load_cancer(seed: int) -> Population:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data.copy()
    rng = np.random.default_rng([seed, 11])
    radius = frame["mean radius"].to_numpy()
    noisy = (radius - radius.mean()) / radius.std() + rng.normal(0.0, 0.5, radius.size)
    cuts = np.quantile(noisy, [0.1, 0.3, 0.6, 0.85])
    levels = np.array([f"G{i}" for i in range(1, 6)], dtype=object)
    frame["grade"] = levels[np.searchsorted(cuts, noisy)]
    frame = frame.astype({"grade": object})
    mask = rng.random(frame.shape) < MISSING_SHARE
    frame = frame.mask(mask)
    return Population("cancer", frame, ["grade"], False, DRAWN_REFERENCE_ROWS)


def load_diabetes_set() -> Population:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).data.copy()
    return Population("diabetes", frame, [], False, DRAWN_REFERENCE_ROWS)


def populations(seed: int) -> list[Population]:
    return [load_wine(), load_cancer(seed), load_diabetes_set()]


def split_rng(seed: int, data: int, split: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, data, split])


def batch_rng(seed: int, data: int, rows: int, batch: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, data, rows, batch])


# ------------------------------------------------------------------------------ power data


@dataclass(frozen=True)
class Column:
    """A generated column: how the reference and the batch draw it."""

    name: str
    reference: Sampler
    batch: Sampler
    shift: str = ""  # what was planted; empty: an unshifted twin
    categorical: bool = False


@dataclass(frozen=True)
class PowerCell:
    """One row group of the power table: batches of ``rows`` against ``reference_rows``."""

    key: str
    title: str
    rows: int
    reference_rows: int
    columns: list[Column]
    batches: int
    dataset_verdict: bool = False
    evidently_cap: int | None = None
    evidently_reports: bool = True

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.categorical]

    def frame(self, rng: np.random.Generator, reference: bool) -> pd.DataFrame:
        rows = self.reference_rows if reference else self.rows
        return pd.DataFrame(
            {c.name: (c.reference if reference else c.batch)(rng, rows) for c in self.columns}
        )


def normal(mean: float = 0.0, sd: float = 1.0) -> Sampler:
    return lambda rng, n: rng.normal(mean, sd, n)


def lognormal(sigma: float) -> Sampler:
    return lambda rng, n: rng.lognormal(0.0, sigma, n)


def poisson(mean: float) -> Sampler:
    return lambda rng, n: rng.poisson(mean, n).astype(float)


def categorical(p: np.ndarray, prefix: str) -> Sampler:
    labels = np.array([f"{prefix}{i:02d}" for i in range(p.size)], dtype=object)
    return lambda rng, n: labels[rng.choice(p.size, n, p=p)]


VERDICT: dict[str, Any] = {"dataset_verdict": True}


def power_cells(batches: int, million_batches: int) -> tuple[list[PowerCell], dict[str, float]]:
    """The power table's cells and the JS distances the categorical shifts reach."""
    shifted, reached = [], {}
    for name, p in level_probabilities().items():
        q, reached[name] = tilted(p, JS_TARGET)
        shifted.append(
            Column(
                name,
                categorical(p, name[3:] + "L"),
                categorical(q, name[3:] + "L"),
                f"{p.size} levels, JS {reached[name]:.3f}",
                True,
            )
        )
        clean = categorical(p, name[3:] + "L")
        shifted.append(Column(f"{name}_clean", clean, clean, "", True))
    one_each = [
        Column("normal_mean", normal(), normal(0.25), "normal, mean +0.25 sd"),
        Column("normal_sd", normal(), normal(0.0, 1.2), "normal, sd x1.2"),
        Column("lognormal", lognormal(0.5), lognormal(0.6), "lognormal, sigma 0.5 to 0.6"),
        Column("poisson", poisson(2.0), poisson(2.35), "Poisson, mean 2 to 2.35"),
        *shifted,
        Column("normal_clean", normal(), normal()),
        Column("lognormal_clean", lognormal(0.5), lognormal(0.5)),
        Column("poisson_clean", poisson(2.0), poisson(2.0)),
    ]
    small = [
        Column("normal_mean", normal(), normal(0.5), "normal, mean +0.5 sd"),
        *[Column(f"normal_clean_{i}", normal(), normal()) for i in range(4)],
    ]

    def ten(shift: float) -> list[Column]:
        return [
            *[
                Column(f"shifted_{i}", normal(), normal(shift), f"normal, mean +{shift} sd")
                for i in range(3)
            ],
            *[Column(f"clean_{i}", normal(), normal()) for i in range(7)],
        ]

    trivia = [
        Column("normal_mean", normal(), normal(0.05), "normal, mean +0.05 sd"),
        Column("normal_clean", normal(), normal()),
    ]
    cells = [
        PowerCell("one_each_5000", "one shift per feature", 5_000, 5_000, one_each, batches),
        PowerCell("one_250", "mean shift at 250 rows", 250, 5_000, small, batches),
        PowerCell("dataset_5000", "3 of 10 shifted", 5_000, 5_000, ten(0.25), batches, **VERDICT),
        PowerCell("dataset_250", "3 of 10 shifted", 250, 5_000, ten(0.5), batches, **VERDICT),
        PowerCell(
            "trivia_1m",
            "a trivial mean shift",
            1_000_000,
            1_000_000,
            trivia,
            million_batches,
            evidently_cap=3,  # each 1M-row batch costs Evidently seconds and a GiB
            evidently_reports=False,  # a full Report at 1M rows: a minute and more per batch
        ),
    ]
    return cells, reached


def power_rng(seed: int, cell: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 3, cell, kind, index])


# --------------------------------------------------------------------------- driftloop side


@dataclass
class Tally:
    """What one tool concluded over a cell's batches."""

    batches: int = 0
    drift: int = 0
    insufficient: int = 0
    flagged_share_sum: float = 0.0
    tested_sum: int = 0
    seconds: float = 0.0
    per_feature: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Tally) -> None:
        self.batches += other.batches
        self.drift += other.drift
        self.insufficient += other.insufficient
        self.flagged_share_sum += other.flagged_share_sum
        self.tested_sum += other.tested_sum
        self.seconds += other.seconds
        for name, count in other.per_feature.items():
            self.per_feature[name] = self.per_feature.get(name, 0) + count

    def add(self, status: str, flagged: list[str], tested: int, seconds: float) -> None:
        self.batches += 1
        self.seconds += seconds
        if status == "insufficient_data":
            self.insufficient += 1
            return
        self.drift += status == "drift"
        self.tested_sum += tested
        self.flagged_share_sum += len(flagged) / tested if tested else 0.0
        for name in flagged:
            self.per_feature[name] = self.per_feature.get(name, 0) + 1

    @property
    def decided(self) -> int:
        return self.batches - self.insufficient

    def drift_share(self) -> float:
        return self.drift / self.decided if self.decided else math.nan

    def flagged_share(self) -> float:
        return self.flagged_share_sum / self.decided if self.decided else math.nan

    def feature_share(self, name: str) -> float:
        return self.per_feature.get(name, 0) / self.decided if self.decided else math.nan


def drift_settings() -> Any:
    from driftloop.config import DriftSettings

    return DriftSettings()


def profile_of(frame: pd.DataFrame, categorical_: list[str], settings: Any) -> Any:
    from driftloop.drift.profile import build_profile

    return build_profile(
        frame,
        categorical=categorical_,
        target=None,
        target_is_categorical=False,
        bins=settings.bins,
        exact_max=settings.exact_reference_max,
        statistics=settings.statistics,
        calibration_draws=settings.calibration_draws,
    )


def check(profile: Any, batch: pd.DataFrame, settings: Any, tally: Tally) -> None:
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
    kind, first, second = task
    return task, power_task(first) if kind == "power" else false_alarm_task(first, second)


def run_dir(args: argparse.Namespace) -> Path:
    """The work files of one run configuration (a quick run leaves a full one's alone)."""
    sizes = "-".join(map(str, args.sizes))
    name = f"s{args.seed}-b{args.batches}-r{args.splits}-n{sizes}"
    name += f"-p{args.power_batches}-m{args.million_batches}-e{args.evidently_batches}"
    return WORK_DIR / name


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


# ---------------------------------------------------------------------------- Evidently side


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
    methods: dict[str, int] = {}
    for record in records[:1]:
        for column in record["columns"].values():
            methods[column["method"]] = methods.get(column["method"], 0) + 1
    return ", ".join(f"{m} x{k}" for m, k in methods.items())


# -------------------------------------------------------------------------------- reporting


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def upper_bound(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate."""
    from scipy.stats import beta

    if trials == 0:
        return math.nan
    if successes >= trials:
        return 1.0
    return float(beta.ppf(confidence, successes + 1, trials - successes))


def lower_bound(successes: int, trials: int, confidence: float = 0.95) -> float:
    from scipy.stats import beta

    if trials == 0:
        return math.nan
    if successes <= 0:
        return 0.0
    return float(beta.ppf(1 - confidence, successes, trials - successes + 1))


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def false_alarm_table(
    data: list[Population],
    sizes: list[int],
    ours: dict[tuple[str, int], Tally],
    theirs: dict[str, list[dict[str, Any]]],
) -> list[str]:
    lines = [
        "| data set | batch rows | batches | driftloop: called drift (95% upper) "
        "| driftloop: features flagged per batch | features tested (mean of) "
        "| insufficient data | met | Evidently batches | Evidently: called drift "
        "| Evidently: features flagged per batch | full Report agrees |",
        "| --- |" + " ---: |" * 11,
    ]
    for population in data:
        width = len(population.frame.columns)
        for rows in sizes:
            t = ours[population.name, rows]
            ok = t.drift_share() <= TARGET_FALSE_ALARMS and t.flagged_share() <= TARGET_FALSE_ALARMS
            records = theirs.get(f"{population.name}:{rows}", [])
            e, reports, agreed, _ = evidently_tally(records)
            cells = [
                population.name,
                str(rows),
                str(t.batches),
                f"{pct(t.drift_share())} ({pct(upper_bound(t.drift, t.decided))})",
                pct(t.flagged_share()),
                f"{t.tested_sum / t.decided:.1f} of {width}" if t.decided else "-",
                str(t.insufficient),
                verdict(ok) if t.decided else "-",
                str(e.batches),
                pct(e.drift_share()),
                pct(e.flagged_share()),
                f"{agreed} of {reports}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def worst_features(
    data: list[Population], sizes: list[int], ours: dict[tuple[str, int], Tally]
) -> list[str]:
    """Per cell, the features driftloop flags most often on clean batches."""
    lines = []
    for population in data:
        for rows in sizes:
            t = ours[population.name, rows]
            top = sorted(t.per_feature.items(), key=lambda item: -item[1])[:3]
            if top:
                named = ", ".join(f"{name} {pct(count / t.decided)}" for name, count in top)
                lines.append(f"- {population.name}, {rows} rows: {named}")
    return lines


def power_table(
    cells: list[PowerCell], ours: dict[str, Tally], theirs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    lines = [
        "| planted shift | feature | batch rows / reference rows | batches "
        "| driftloop flagged (95% lower) | target | met | Evidently batches | Evidently flagged |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for cell in cells:
        if cell.dataset_verdict:
            continue
        t = ours.get(cell.key, Tally())
        e = evidently_tally(theirs.get(cell.key, []))[0]
        for column in cell.columns:
            share = t.feature_share(column.name)
            trivia = cell.key.startswith("trivia")
            if column.shift and trivia:
                target, ok = f"<= {pct(TARGET_TRIVIA)}", share <= TARGET_TRIVIA
            elif column.shift:
                target, ok = f">= {pct(TARGET_POWER)}", share >= TARGET_POWER
            else:
                target, ok = "(no shift)", True
            count = t.per_feature.get(column.name, 0)
            cells_ = [
                column.shift or "none (twin)",
                column.name,
                f"{cell.rows:,} / {cell.reference_rows:,}",
                str(t.decided),
                f"{pct(share)} ({pct(lower_bound(count, t.decided))})",
                target,
                verdict(ok) if column.shift and t.decided else "-",
                str(e.decided),
                pct(e.feature_share(column.name)),
            ]
            lines.append("| " + " | ".join(cells_) + " |")
    return lines


def dataset_table(
    cells: list[PowerCell], ours: dict[str, Tally], theirs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    lines = [
        "| case | batch rows / reference rows | batches | driftloop called drift "
        "| target | met | driftloop features flagged per batch | Evidently batches "
        "| Evidently called drift (its drift_share 0.5) | Evidently features flagged per batch |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for cell in cells:
        if not cell.dataset_verdict:
            continue
        t = ours.get(cell.key, Tally())
        e = evidently_tally(theirs.get(cell.key, []))[0]
        shift = cell.columns[0].shift
        cells_ = [
            f"3 of 10 shifted ({shift})",
            f"{cell.rows:,} / {cell.reference_rows:,}",
            str(t.decided),
            pct(t.drift_share()),
            f">= {pct(TARGET_POWER)}",
            verdict(t.drift_share() >= TARGET_POWER) if t.decided else "-",
            pct(t.flagged_share()),
            str(e.decided),
            pct(e.drift_share()),
            pct(e.flagged_share()),
        ]
        lines.append("| " + " | ".join(cells_) + " |")
    return lines


def timing_lines(
    data: list[Population],
    sizes: list[int],
    cells: list[PowerCell],
    ours: dict[tuple[str, int], Tally],
    power: dict[str, Tally],
    build_seconds: dict[str, float],
    theirs: dict[str, list[dict[str, Any]]],
) -> list[str]:
    lines = [
        "| cell | driftloop check ms (mean) | Evidently per batch ms (its drift function) "
        "| Evidently full Report s (mean) |",
        "| --- | ---: | ---: | ---: |",
    ]
    keys = [(f"{p.name}:{n}", ours[p.name, n]) for p in data for n in sizes]
    keys += [(cell.key, power.get(cell.key, Tally())) for cell in cells]
    for key, tally in keys:
        e, reports, _, report_s = evidently_tally(theirs.get(key, []))
        cells_ = [
            key,
            f"{1000 * tally.seconds / max(tally.batches, 1):.1f}",
            f"{1000 * e.seconds / e.batches:.0f}" if e.batches else "-",
            f"{report_s:.1f}" if reports else "-",
        ]
        lines.append("| " + " | ".join(cells_) + " |")
    lines.append("")
    lines.append(
        "driftloop profile build with calibration, mean per reference: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in build_seconds.items())
    )
    return lines


LOAD_AT_START = os.getloadavg()


def machine_lines(started: float, evidently_meta: dict[str, Any]) -> list[str]:
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"run took {(time.time() - started) / 60:.1f} min",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM",
        "- load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.2f}" for x in LOAD_AT_START)
        + f"; at the end: {load}",
        f"- Python {platform.python_version()}; numpy {version('numpy')}, "
        f"pandas {version('pandas')}, "
        f"scikit-learn {version('scikit-learn')}, driftloop {version('driftloop')}; "
        f"Evidently {evidently_meta.get('evidently', 'not run')} in var/bench-evidently-venv",
        "- command: `"
        + " ".join([".venv/bin/python", "benchmarks/drift_calibration.py", *sys.argv[1:]])
        + "`",
    ]


# ------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000, help="clean batches per cell")
    parser.add_argument("--splits", type=int, default=25, help="references per data set")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="batch rows")
    parser.add_argument("--power-batches", type=int, default=200, help="batches per power cell")
    parser.add_argument("--million-batches", type=int, default=40, help="1M-row batches")
    parser.add_argument(
        "--evidently-batches", type=int, default=50, help="Evidently: first K batches per cell"
    )
    parser.add_argument(
        "--evidently-reports",
        type=int,
        default=1,
        help="Evidently: first batches per cell also run as a full Report (agreement check)",
    )
    parser.add_argument(
        "--evidently-timeout", type=float, default=1500.0, help="seconds; then Evidently stops"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="driftloop processes (the machine is shared)"
    )
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument(
        "--stop-after", type=float, help="minutes; then report the tasks finished by then"
    )
    parser.add_argument("--resume", action="store_true", help="go on from the checkpoint")
    parser.add_argument(
        "--report-only", action="store_true", help="print the tables of the checkpoint"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--json", help="also write every figure to this file")
    add_smoke(parser, "seconds: two sizes, a few batches, no Evidently (--quick: minutes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in str(args.sizes).split(",")]
    if args.quick:
        args.batches, args.splits, args.power_batches = 40, 4, 20
        args.million_batches, args.evidently_batches = 2, 3
    if args.smoke:
        args.batches, args.splits, args.power_batches, args.sizes = 10, 2, 4, [30, 250]
        args.million_batches, args.evidently_batches, args.skip_evidently = 1, 0, True
        skipped_in_smoke("the Evidently child")
    return args


def progress_printer(started: float) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"[{(time.time() - started) / 60:5.1f} min] {message}", file=sys.stderr, flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        evidently_child(Path(args.child), Path(args.out), args.deadline)
        return 0
    started = time.time()
    say = progress_printer(started)
    data = populations(args.seed)
    cells, reached = power_cells(args.power_batches, args.million_batches)
    child, out = None, run_dir(args) / "evidently.json"
    if not (args.skip_evidently or args.report_only):
        ensure_evidently_venv()
        plan_path, _ = write_plan(data, cells, args)
        if not args.resume:
            out.unlink(missing_ok=True)
        log = (run_dir(args) / "evidently.log").open("a")
        deadline = started + (60 * args.stop_after if args.stop_after else args.evidently_timeout)
        child = subprocess.Popen(
            [str(EVIDENTLY_PYTHON), str(Path(__file__).resolve()), "--child", str(plan_path),
             "--out", str(out), "--deadline", str(min(deadline, started + args.evidently_timeout))],
            cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        say(f"Evidently started in its own process (pid {child.pid})")
    ours, build_seconds, power, status = run_driftloop(data, cells, args, say)
    say(status)
    theirs: dict[str, list[dict[str, Any]]] = {}
    meta: dict[str, Any] = {}
    if child is not None:
        say("driftloop done; waiting for Evidently")
        child.wait()
    if out.is_file() and not args.skip_evidently:
        stored = json.loads(out.read_text())
        theirs, meta = stored["results"], stored["meta"]
    elif child is not None:
        say(f"Evidently wrote nothing; see {run_dir(args) / 'evidently.log'}")
    meta["driftloop"] = status
    text = report(args, data, cells, reached, ours, power, build_seconds, theirs, meta, started)
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "false_alarms": {f"{k[0]}:{k[1]}": vars(v) for k, v in ours.items()},
                    "power": {k: vars(v) for k, v in power.items()},
                    "evidently": theirs,
                    "evidently_meta": meta,
                },
                indent=1,
            )
        )
    return 0


def report(
    args: argparse.Namespace,
    data: list[Population],
    cells: list[PowerCell],
    reached: dict[str, float],
    ours: dict[tuple[str, int], Tally],
    power: dict[str, Tally],
    build_seconds: dict[str, float],
    theirs: dict[str, list[dict[str, Any]]],
    meta: dict[str, Any],
    started: float,
) -> str:
    shapes = ", ".join(
        f"{p.name} {len(p.frame):,} rows x {len(p.frame.columns)} features"
        + (f" ({len(p.categorical)} categorical)" if p.categorical else "")
        for p in data
    )
    evidently_note = (
        "Evidently skipped (--skip-evidently)."
        if args.skip_evidently
        else f"Evidently: its drift function on the first {args.evidently_batches} batches of "
        f"each cell (fewer where the table says so; 3 at 1M rows), full Report on the first "
        f"{args.evidently_reports}; stopped at the deadline: {meta.get('stopped_at_deadline')}; "
        f"took {meta.get('seconds', math.nan) / 60:.1f} min in parallel."
    )
    sections = [
        ["## Machine and command", ""],
        machine_lines(started, meta),
        [
            "",
            f"Data: {shapes}. {args.splits} references per data set; "
            f"{args.batches} clean batches per cell ({meta.get('driftloop', '')}). "
            + evidently_note,
            "",
            "## False alarms on clean batches (targets: at most 1.5% of batches called drift, "
            "at most 1.5% of features flagged per batch)",
            "",
        ],
        false_alarm_table(data, args.sizes, ours, theirs),
        ["", "Features driftloop flagged most often on clean batches (share of batches):", ""],
        worst_features(data, args.sizes, ours),
        ["", "Evidently's tests (chosen by its defaults, first batch of each cell):", ""],
        [f"- {key}: {evidently_methods(records)}" for key, records in theirs.items() if records],
        [
            "",
            "## Power (target: flagged in at least 95% of batches; 1M rows: at most 5%)",
            "",
            "Categorical shifts: JS distance (base 2) between the generating distributions "
            + ", ".join(f"{k} {v:.6f}" for k, v in reached.items())
            + f". A new reference every {REFERENCE_EVERY} batches.",
            "",
        ],
        power_table(cells, power, theirs),
        ["", "## Dataset verdict (driftloop drift_share 0.3)", ""],
        dataset_table(cells, power, theirs),
        ["", "## Time per batch", ""],
        timing_lines(data, args.sizes, cells, ours, power, build_seconds, theirs),
    ]
    return "\n".join(line for section in sections for line in section)


if __name__ == "__main__":
    sys.exit(main())
