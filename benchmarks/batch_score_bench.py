"""Batch scoring benchmark: ``driftloop score`` against the model alone.

Why: issue 15 asks that scoring a file (read, check, predict, write) of 1M rows run at 70% or
more of the rows/s of calling ``pipeline.predict`` in-process on the same rows, with no A/B
test running and the prediction-log insert left out (its rate reported on its own), and that
peak memory not grow with the file.

What, in one run on one machine:

1. a fresh home (``var/bench-batch-score``, ignored by git) with PyCaret ExtraTrees (the
   serving benchmark's model: ``n_jobs=1``, 3 folds) bootstrapped as version 1 (Production);
2. files of 100k, 1M and 2M rows drawn from white wine with replacement plus 1% noise per
   value, as CSV (and the 1M one as Parquet);
3. alternating, ``--repeats`` times: ``pipeline.predict`` on the 1M rows already in memory
   (the frame is read before the clock starts), and ``score_file`` on the 1M-row CSV with the
   log off, each in a fresh process; the ratio of the medians is the figure;
4. peak resident memory (``VmHWM``) of a fresh process scoring each file size, and of one
   that only loads the model (the floor);
5. the prediction-log insert on its own: scoring the 100k file with the log on (SQLite),
   rows/s of the insert part.

Run from the repository root (about 6 minutes on 2 cores, on a quiet machine):

    .venv/bin/python benchmarks/batch_score_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "driftloop.yaml"
PYTHON = sys.executable


def settings_for(home: Path):
    from driftloop.config import load_settings

    return load_settings(
        CONFIG,
        storage={"home": home},
        training={"models": ["et"], "folds": 3, "budget_minutes": 1},
    )


def prepare(home: Path, reuse: bool) -> None:
    """The home with version 1 in Production, and the files to score."""
    if reuse and (home / "mlflow.db").is_file():
        return
    from driftloop.storage import make_engine, upgrade
    from driftloop.training.retrain import bootstrap

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    settings = settings_for(home)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    started = time.perf_counter()
    bootstrap(settings, engine)
    print(f"bootstrap: {time.perf_counter() - started:.0f} s", flush=True)
    write_files(settings, home)


def write_files(settings, home: Path) -> None:
    import numpy as np
    import pandas as pd

    data = pd.read_csv(settings.data.path, sep=settings.data.separator)
    features = data[settings.feature_columns]
    rng = np.random.default_rng(0)
    for rows in (100_000, 1_000_000, 2_000_000):
        picked = features.sample(rows, replace=True, random_state=rows).to_numpy()
        noisy = picked * rng.normal(1.0, 0.01, picked.shape)
        frame = pd.DataFrame(noisy.round(5), columns=features.columns)
        frame.to_csv(home / f"rows-{rows}.csv", sep=settings.data.separator, index=False)
        if rows == 1_000_000:
            frame.to_parquet(home / f"rows-{rows}.parquet", index=False)
        print(f"wrote {rows:,} rows", flush=True)


# --- measurements, each in a fresh process (``child``) --------------------------------------


def child(kind: str, home: Path, file: str, log: bool) -> dict:
    """One measurement in this process; printed as JSON for the parent."""
    import pandas as pd

    from driftloop import registry
    from driftloop.scoring.model import load_version
    from driftloop.storage import make_engine

    settings = settings_for(home)
    registry.configure(settings)
    result: dict = {"kind": kind, "file": file, "load_avg": os.getloadavg()[0]}
    if kind == "predict":
        version = load_version(settings, "1")
        frame = pd.read_csv(home / file, sep=settings.data.separator)
        started = time.perf_counter()
        version.pipeline.predict(frame)
        result["seconds"] = time.perf_counter() - started
        result["rows"] = len(frame)
    elif kind == "load":
        load_version(settings, "1")
    else:
        from driftloop.scoring.batch import score_file

        engine = make_engine(settings.database_url)
        out = home / "out" / f"{file}.answers{Path(file).suffix}"
        out.parent.mkdir(exist_ok=True)
        scored = score_file(settings, engine, home / file, out, log_predictions=log)
        result |= {
            "seconds": scored.loop_seconds - scored.log_seconds,
            "log_seconds": scored.log_seconds,
            "rows": scored.rows,
            "scored": scored.scored,
        }
        out.unlink()
    result["peak_mib"] = peak_mib()
    return result


def peak_mib() -> float:
    """This process's peak resident memory. ``VmHWM``, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` over from the parent across fork and exec, so every child would report the
    parent's peak (the one that wrote the files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, home: Path, file: str, log: bool = False) -> dict:
    done = subprocess.run(
        [PYTHON, __file__, "--child", kind, "--home", str(home), "--file", file]
        + (["--log"] if log else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "var/bench-batch-score")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reuse-home", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--file")
    parser.add_argument("--log", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.home, args.file, args.log)))
        return
    prepare(args.home, args.reuse_home)
    million = "rows-1000000.csv"
    predict, score = [], []
    for _ in range(args.repeats):  # alternating, so a busy spell hits both
        predict.append(measure("predict", args.home, million))
        score.append(measure("score", args.home, million))
    parquet = measure("score", args.home, "rows-1000000.parquet")
    memory = {"model only": measure("load", args.home, million)}
    for file in ("rows-100000.csv", million, "rows-2000000.csv"):
        memory[file] = measure("score", args.home, file)
    logged = measure("score", args.home, "rows-100000.csv", log=True)

    def rate(results: list[dict]) -> float:
        return statistics.median(r["rows"] / r["seconds"] for r in results)

    predict_rate, score_rate = rate(predict), rate(score)
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load avg during runs "
        f"{min(r['load_avg'] for r in predict + score):.1f} to "
        f"{max(r['load_avg'] for r in predict + score):.1f}"
    )
    print(f"command: .venv/bin/python benchmarks/batch_score_bench.py --repeats {args.repeats}")
    print()
    print(f"| 1M rows | rows/s (median of {args.repeats}) | seconds |")
    print("| --- | ---: | ---: |")
    print(
        f"| pipeline.predict in-process (frame in memory) | {predict_rate:,.0f} | "
        f"{statistics.median(r['seconds'] for r in predict):.2f} |"
    )
    print(
        f"| driftloop score, CSV: read, check, predict, write | {score_rate:,.0f} | "
        f"{statistics.median(r['seconds'] for r in score):.2f} |"
    )
    print(f"| driftloop score, Parquet | {rate([parquet]):,.0f} | {parquet['seconds']:.2f} |")
    print()
    print(f"**ratio: {score_rate / predict_rate:.1%}** of pipeline.predict's rows/s (target 70%)")
    print()
    print("| peak memory of a fresh process | MiB |")
    print("| --- | ---: |")
    for name, result in memory.items():
        print(f"| {name} | {result['peak_mib']:,.0f} |")
    print()
    print(
        f"prediction-log insert (SQLite, 100k rows, with inputs and outputs as JSON): "
        f"{logged['rows'] / logged['log_seconds']:,.0f} rows/s "
        f"({logged['log_seconds']:.1f} s beside {logged['seconds']:.1f} s of scoring)"
    )


if __name__ == "__main__":
    main()
