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
3. peak resident memory (``VmHWM``) of a fresh process scoring each file size, at the end and
   after its first 200,000 rows, and of one that only loads the model (the floor);
4. alternating, ``--repeats`` times: ``pipeline.predict`` on the 1M rows already in memory
   (the frame is read before the clock starts), on the whole frame and in 50,000-row slices,
   and ``score_file`` on the 1M-row CSV with the log off, each in a fresh process; the ratio
   of the medians is the figure;
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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from support.common import CONFIG, ROOT, add_smoke, peak_mib
from support.homes import EXTRA_TREES, prepare_home, smoke_home

PYTHON = sys.executable
SIZES = (100_000, 1_000_000, 2_000_000)  # the middle one is timed; --smoke: a fiftieth


def settings_for(home: Path):
    from driftloop.settings_loader import load_settings

    return load_settings(
        CONFIG,
        storage={"home": home},
        training=EXTRA_TREES,
    )


def prepare(home: Path, reuse: bool) -> None:
    """The home with version 1 in Production, and the files to score."""
    if reuse and (home / "mlflow.db").is_file():
        return
    started = time.perf_counter()
    settings = prepare_home(home, False, EXTRA_TREES)
    print(f"bootstrap: {time.perf_counter() - started:.0f} s", flush=True)
    write_files(settings, home, SIZES)


def write_files(settings, home: Path, sizes: tuple[int, ...]) -> None:
    import numpy as np
    import pandas as pd

    data = pd.read_csv(settings.data.path, sep=settings.data.separator)
    features = data[settings.feature_columns]
    rng = np.random.default_rng(0)
    for rows in sizes:
        picked = features.sample(rows, replace=True, random_state=rows).to_numpy()
        noisy = picked * rng.normal(1.0, 0.01, picked.shape)
        frame = pd.DataFrame(noisy.round(5), columns=features.columns)
        frame.to_csv(home / f"rows-{rows}.csv", sep=settings.data.separator, index=False)
        if rows == sizes[1]:
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
    if kind.startswith("predict"):
        version = load_version(settings, "1")
        frame = pd.read_csv(home / file, sep=settings.data.separator)
        step = 50_000 if kind == "predict-chunks" else len(frame)
        started = time.perf_counter()
        for start in range(0, len(frame), step):
            version.pipeline.predict(frame.iloc[start : start + step])
        result["seconds"] = time.perf_counter() - started
        result["rows"] = len(frame)
    elif kind == "load":
        load_version(settings, "1")
    else:
        from driftloop.stages.batch_scoring import score_file

        engine = make_engine(settings.database_url)
        out = home / "out" / f"{file}.answers{Path(file).suffix}"
        out.parent.mkdir(exist_ok=True)
        early: list[float] = []

        def progress(rows: int) -> None:
            if not early and rows >= 200_000:  # the peak so far, to compare with the end's
                early.append(peak_mib())

        scored = score_file(
            settings, engine, home / file, out, log_predictions=log, progress=progress
        )
        result["peak_mib_200k"] = early[0] if early else None
        result |= {
            "seconds": scored.loop_seconds - scored.log_seconds,
            "log_seconds": scored.log_seconds,
            "rows": scored.rows,
            "scored": scored.scored,
        }
        out.unlink()
    result["peak_mib"] = peak_mib()
    return result


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
    parser.add_argument("--memory-only", action="store_true", help="Skip the speed figures.")
    add_smoke(parser, "a fiftieth of the rows, one repeat, on the shared smoke home")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.home, args.file, args.log)))
        return
    sizes = SIZES
    if args.smoke:
        sizes, args.repeats = (2_000, 20_000, 40_000), 1
        args.home = smoke_home().storage.home
        write_files(settings_for(args.home), args.home, sizes)
    else:
        prepare(args.home, args.reuse_home)
    million = f"rows-{sizes[1]}.csv"
    memory = {} if args.smoke else {"model only": measure("load", args.home, million)}
    files = (million,) if args.smoke else (f"rows-{sizes[0]}.csv", million, f"rows-{sizes[2]}.csv")
    for file in files:  # (smoke: the middle file; the others run the same code)
        memory[file] = measure("score", args.home, file)
    if not args.memory_only:
        predict, chunked, score = [], [], []
        for _ in range(args.repeats):  # alternating, so a busy spell hits all three
            predict.append(measure("predict", args.home, million))
            if not args.smoke:  # (smoke: the same code as predict, in steps)
                chunked.append(measure("predict-chunks", args.home, million))
            score.append(measure("score", args.home, million))
        if args.smoke:  # its 20,000 rows are one 50,000-row chunk: the same call as predict
            chunked = predict
        parquet = measure("score", args.home, f"rows-{sizes[1]}.parquet")
        logged = measure("score", args.home, f"rows-{sizes[0]}.csv", log=True)
    loads = [r["load_avg"] for r in memory.values()]
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load avg at the measurements "
        f"{min(loads):.1f} to {max(loads):.1f}"
    )
    print(f"command: .venv/bin/python benchmarks/batch_score_bench.py --repeats {args.repeats}")
    print()
    print("| peak memory of a fresh process | MiB at the end | MiB after 200,000 rows |")
    print("| --- | ---: | ---: |")
    for name, result in memory.items():
        early = result.get("peak_mib_200k")
        shown = "" if early is None else f"{early:,.0f}"
        print(f"| {name} | {result['peak_mib']:,.0f} | {shown} |")
    if args.memory_only:
        return
    print()
    print(f"| {sizes[1]:,} rows | rows/s (median of {args.repeats}) | seconds |")
    print("| --- | ---: | ---: |")
    for name, results in (
        ("pipeline.predict in-process, the whole frame", predict),
        ("pipeline.predict in-process, 50,000 rows at a time", chunked),
        ("driftloop score, CSV: read, check, predict, write", score),
        ("driftloop score, Parquet (one run)", [parquet]),
    ):
        print(f"| {name} | {rate(results):,.0f} | {median_seconds(results):.2f} |")
    print()
    print(
        f"**ratio: {rate(score) / rate(predict):.0%}** of pipeline.predict's rows/s on the "
        f"whole frame (target 70%); {rate(score) / rate(chunked):.0%} of it in 50,000-row "
        "chunks"
    )
    print()
    print(
        f"prediction-log insert (SQLite, {sizes[0]:,} rows, inputs and outputs as JSON): "
        f"{logged['rows'] / logged['log_seconds']:,.0f} rows/s "
        f"({logged['log_seconds']:.1f} s beside {logged['seconds']:.1f} s of scoring)"
    )


def rate(results: list[dict]) -> float:
    return statistics.median(r["rows"] / r["seconds"] for r in results)


def median_seconds(results: list[dict]) -> float:
    return statistics.median(r["seconds"] for r in results)


if __name__ == "__main__":
    main()
