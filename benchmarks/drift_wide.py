"""CPU per drift check on wide batches, this checkout against another (issue 26, item 6).

Why: the 1M-row target (``drift_bench.py``) is met on wine-like columns, but a heavy-tailed
column larger than the stored null's sizes is tested by resampling at check time, so wide
batches of heavy-tailed columns are where a check's time goes: about 26 s for 20,000 rows by
100 lognormal features before the splits were shared. This measures CPU seconds per check
(``time.process_time`` of every thread, robust to other load, unlike wall time) and wall
seconds beside it for four wide shapes, in child processes alternating between the
checkouts, so both see the same machine. CPU above wall is threads (BLAS) spinning: on a
machine doing other work they take its cores.

Shapes (default ``DriftSettings``; references and batches from the same population):
- lognormal: 30 lognormal (sigma 1) columns, 20,000-row reference and batches;
- normal: 100 standard normal columns, 5,000-row reference, 1,000-row batches;
- mixed, every detector: a 5-level region, a 3-level categorical and 98 numeric columns
  (every third lognormal, the first with 10% missing), segments by region and the
  multivariate test allowed to call drift, 5,000 / 1,000 rows;
- categorical: 30 many-level categorical columns (Zipf over 2,000 and 500 levels, uniform over
  50, in turn), 5,000 / 1,000 rows: their permutation tests split the pooled level counts at
  check time.

    .venv/bin/python benchmarks/drift_wide.py --before /path/to/other/checkout
    .venv/bin/python benchmarks/drift_wide.py --smoke      # small shapes, this checkout only
    .venv/bin/python benchmarks/drift_wide.py --only categorical --before ...   # one shape
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from support.common import ROOT, add_smoke, print_header
from support.drift_data import label_sampler, profile_with, zipf_shares

SHAPES = {  # name: (kind, features, reference rows, batch rows, timed checks)
    "full": [
        ("lognormal", 30, 20_000, 20_000, 2),
        ("normal", 100, 5_000, 1_000, 10),
        ("mixed, every detector", 100, 5_000, 1_000, 3),
        ("categorical", 30, 5_000, 1_000, 10),
    ],
    "smoke": [
        ("lognormal", 4, 3_000, 3_000, 1),
        ("normal", 10, 2_000, 500, 2),
        ("mixed, every detector", 10, 2_000, 500, 1),
        ("categorical", 3, 2_000, 500, 1),
    ],
}


CATEGORICAL_COLUMNS = (  # drawn in turn: Zipf over 2,000 and 500 levels, uniform over 50
    label_sampler(zipf_shares(2_000)),
    label_sampler(zipf_shares(500)),
    label_sampler(np.full(50, 1.0 / 50)),
)


def frame(kind: str, rng: np.random.Generator, rows: int, features: int) -> pd.DataFrame:
    """A frame of the shape ``kind`` (see the module's docstring)."""
    if kind == "lognormal":
        values = rng.lognormal(0.0, 1.0, (rows, features))
        return pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])
    if kind == "normal":
        values = rng.standard_normal((rows, features))
        return pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])
    if kind == "categorical":
        return pd.DataFrame(
            {f"c{i}": CATEGORICAL_COLUMNS[i % 3](rng, rows) for i in range(features)}
        )
    data = {"region": rng.choice(["r0", "r1", "r2", "r3", "r4"], rows)}
    for i in range(features - 2):
        values = rng.standard_normal(rows)
        data[f"x{i}"] = np.exp(values) if i % 3 == 2 else values
    data["kind"] = rng.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1])
    out = pd.DataFrame(data)
    out.loc[rng.random(rows) < 0.1, "x0"] = np.nan
    return out


def child(size: str, only: list[str]) -> dict[str, tuple[float, float]]:
    """CPU and wall seconds per check of each shape (after one untimed check), with this
    process's ``driftloop``."""
    from driftloop.config import DriftSettings
    from driftloop.drift.engine import check_drift

    rng = np.random.default_rng(20261206)
    out = {}
    for kind, features, reference_rows, batch_rows, checks in SHAPES[size]:
        if only and kind not in only:
            continue
        mixed = kind.startswith("mixed")
        settings = (
            DriftSettings(multivariate_retrain=True, segment_by=["region"], segment_retrain=True)
            if mixed
            else DriftSettings()
        )
        reference = frame(kind, rng, reference_rows, features)
        categorical = list(reference.columns) if kind == "categorical" else []
        profile = profile_with(reference, ["region", "kind"] if mixed else categorical, settings)
        batches = [frame(kind, rng, batch_rows, features) for _ in range(checks + 1)]
        check_drift(profile, batches[0], settings)
        started, wall = time.process_time(), time.perf_counter()
        for batch in batches[1:]:
            check_drift(profile, batch, settings)
        label = f"{kind}: {features} features, {reference_rows:,} / {batch_rows:,} rows"
        out[label] = (
            (time.process_time() - started) / checks,
            (time.perf_counter() - wall) / checks,
        )
    return out


def run_child(checkout: Path, size: str, only: list[str]) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(checkout / "include")}
    command = [sys.executable, __file__, "--child", size, *(f"--only={kind}" for kind in only)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_smoke(parser, "small shapes, one round (seconds)")
    parser.add_argument("--before", type=Path, help="another checkout to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per checkout")
    parser.add_argument("--only", action="append", default=[], help="only this shape's kind")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.only)))
        return 0
    size = "smoke" if args.smoke else "full"
    checkouts = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    rounds = 1 if args.smoke else args.rounds
    print_header("Drift check CPU on wide batches")
    measured: dict[str, list[dict[str, list[float]]]] = {name: [] for name in checkouts}
    for _ in range(rounds):
        for name in sorted(checkouts, reverse=True):  # before, then after, in every round
            measured[name].append(run_child(checkouts[name], size, args.only))
            print(f"{name}: {measured[name][-1]}", file=sys.stderr, flush=True)
    labels = list(measured["after"][0])
    header = [f"CPU s per check, {name}" for name in checkouts] + (
        ["before / after"] * bool(args.before)
    )
    header += [f"wall s, {name}" for name in checkouts]
    print("| shape | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for label in labels:
        cpu, wall = (
            {name: statistics.median(r[label][i] for r in rows) for name, rows in measured.items()}
            for i in (0, 1)
        )
        cells = [f"{cpu[name]:.3f}" for name in checkouts]
        if args.before:
            cells.append(f"{cpu['before'] / cpu['after']:.2f}x")
        cells += [f"{wall[name]:.3f}" for name in checkouts]
        print(f"| {label} | " + " | ".join(cells) + " |")
    paths = ", ".join(f"{name} {path}" for name, path in checkouts.items())
    print(f"\nmedian of {rounds} round(s); checkouts: {paths}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
