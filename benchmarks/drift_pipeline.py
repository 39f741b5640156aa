"""Batches larger than memory (issue 19, item 3): the whole pipeline at 1M and 20M rows, and the
sketch path's false alarms, power and error bound. Run directly, or as
``drift_bench.py --pipeline``.

Why: a 20M-row x 13-column Parquet batch must be ingested, validated and checked for drift in
under 1 GiB of peak RSS, at a time per row within 1.5x of the same pipeline at 1M rows (where
the batch is read whole and tested exactly), and the sketch that makes this possible must keep
the false-alarm rate and report an error bound that holds.

What, timing side: the columns and samplers of ``drift_bench.py`` (11 numeric, 2 categorical),
a 100,000-row reference without drift and current batches of 1M and 20M rows with its drift,
written in row groups of 500,000 rows (the 20M file one row group at a time, never whole in
memory; cached under var/bench-data/). Per size, a fresh child process gets its own driftloop
home on SQLite with the reference profile built (setup, not timed), then times the pipeline:
``ingest_landing`` (digest, validation, copy to accepted) and ``check_next_batch`` (loading,
check, report). The child reports its peak RSS (VmHWM) after setup and over the whole process,
and the load average is recorded with every figure.

What, statistical side: the same reference; batches of ``--stat-rows`` values per column, on
the sketch path (summaries, as the streamed check builds them) and on the exact path, seeded:
clean batches (false alarms per feature), and two planted shifts near the effect floors (a
location shift of 0.1 sd and a scale change of 1.1x): the share flagged by each path, and the
sketched Wasserstein's actual error against its bound.

    .venv/bin/python benchmarks/drift_bench.py --pipeline            # both sides, ~15 min
    .venv/bin/python benchmarks/drift_bench.py --pipeline --pipeline-sizes 1000000
    .venv/bin/python benchmarks/drift_pipeline.py --smoke   # 20k exact, 50k sketched, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support.common import ROOT, add_smoke, child_env, proc_status, reset_peak, wait_child
from support.drift_data import CATEGORICAL, DATA_DIR, NUMERIC, SAMPLERS, SEED, make_frame

ROW_GROUP = 500_000
PIPELINE_VERSION = 1
REFERENCE_ROWS = 100_000


def pipeline_path(rows: int) -> Path:
    name = f"pipeline-v{PIPELINE_VERSION}-seed{SEED}"
    return DATA_DIR / name / f"current-{rows}.parquet"


def reference_file() -> Path:
    return pipeline_path(0).with_name("reference.parquet")


def ensure_reference() -> None:
    reference = reference_file()
    if not reference.is_file():
        reference.parent.mkdir(parents=True, exist_ok=True)
        make_frame(REFERENCE_ROWS, False, SEED).to_parquet(reference, index=False)


def ensure_pipeline_data(rows: int) -> None:
    """The reference and a ``rows``-row drifted batch, written one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ensure_reference()
    path = pipeline_path(rows)
    if path.is_file():
        return
    staged = path.with_suffix(".part")
    writer = None
    for index, start in enumerate(range(0, rows, ROW_GROUP)):
        part = make_frame(min(ROW_GROUP, rows - start), True, SEED + 1 + index)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(staged, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
        del part, table
    writer.close()
    staged.replace(path)


def bench_config(home: Path, exact_batch_max: int | None) -> Path:
    """driftloop.yaml with the benchmark's columns, Parquet, and everything under ``home``."""
    import yaml

    config = yaml.safe_load((ROOT / "driftloop.yaml").read_text())
    config["data"].update(
        path=str(reference_file()),
        format="parquet",
        target="target",
        features=[*NUMERIC, *CATEGORICAL],
        categorical_features=CATEGORICAL,
        bounds={},
        drift_source=None,
    )
    if exact_batch_max:
        config["drift"]["exact_batch_max"] = exact_batch_max
    config["storage"] = {**config.get("storage", {}), "home": str(home)}
    config["database"] = {"url": f"sqlite:///{home / 'driftloop.db'}"}
    path = home / "driftloop.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def child_pipeline(rows: int, exact_batch_max: int | None) -> dict[str, Any]:
    """Setup (home, database, reference profile), then the timed pipeline on one batch."""
    from driftloop.schema import upgrade
    from driftloop.settings_loader import load_settings
    from driftloop.stages.drift_check import check_next_batch
    from driftloop.stages.ingest import ingest_landing
    from driftloop.stages.reference_profiles import reset_reference
    from driftloop.storage import make_engine

    home = DATA_DIR / "runs" / f"pipeline-home-{rows}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    settings = load_settings(bench_config(home, exact_batch_max))
    engine = make_engine(settings.database.url)
    upgrade(engine)
    reset_reference(settings, engine, reference_file())
    settings.storage.landing_dir.mkdir(parents=True, exist_ok=True)
    landed = settings.storage.landing_dir / f"batch-{rows}.parquet"
    os.link(pipeline_path(rows), landed)  # the batch arrives; ingestion copies it on
    setup_peak = proc_status()["VmHWM"]
    reset_peak()
    load = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    [ingested] = ingest_landing(settings, engine)
    ingest_s = time.perf_counter() - wall
    outcome = check_next_batch(settings, engine)
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    report = json.loads(Path(outcome.html_path).with_suffix(".json").read_text())
    bounds = {
        c["name"]: c["statistics"].get("wasserstein", {}).get("sketch_bound")
        for c in report["features"]
    }
    shutil.rmtree(home, ignore_errors=True)
    return {
        "rows": rows,
        "status": ingested.status,
        "n_rows": ingested.n_rows,
        "drift": outcome.status,
        "drifted": outcome.drifted_features,
        "sketched": bool(report.get("sketched")),
        "wasserstein_sketch_bound": bounds,
        "seconds": seconds,
        "ingest_seconds": ingest_s,
        "check_seconds": seconds - ingest_s,
        "cpu_seconds": cpu_s,
        "setup_peak_kib": setup_peak,
        "pipeline_peak_kib": proc_status()["VmHWM"],
        "load_average": load,
        "load_average_after": os.getloadavg(),
    }


def run_pipeline_child(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    out = DATA_DIR / "runs" / f"pipeline-{rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child"]
    command += ["--rows", str(rows), "--out", str(out)]
    if args.pipeline_exact_max:
        command += ["--pipeline-exact-max", str(args.pipeline_exact_max)]
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(), stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        code, usage, killed = wait_child(process.pid, args.timeout)
        process.returncode = code
    if killed or code != 0 or not out.is_file():
        return {"rows": rows, "error": f"exit {code} (killed: {killed}), see {log}"}
    result = json.loads(out.read_text())
    result["process_peak_kib"] = max(usage.ru_maxrss, result["setup_peak_kib"])
    return result


# ----------------------------------------------------------------------- statistical side


SHIFTS = {  # planted in every numeric column: (kind, size)
    "clean": (None, 0.0),
    "location 0.012 sd": ("location", 0.012),
    "scale 1.015x": ("scale", 1.015),
    "location 0.1 sd": ("location", 0.1),
    "scale 1.09x": ("scale", 1.09),
}
"""Small shifts sit near the calibrated thresholds at 200,000 values (floors 0), large ones near
the default effect floors (0.1 sd mean shift, 0.075 sd Wasserstein)."""


def _batch(rng: np.random.Generator, profile: Any, rows: int, shift: tuple) -> pd.DataFrame:
    kind, size = shift
    frame = pd.DataFrame({n: SAMPLERS[n](rng, rows, False) for n in NUMERIC})
    for name in NUMERIC:
        column = profile.columns[name]
        if kind == "location":
            frame[name] += size * column.std
        elif kind == "scale":
            frame[name] = column.mean + (frame[name] - column.mean) * size
    return frame


def statistical_side(rows: int, clean: int, shifted: int) -> dict[str, Any]:
    """False alarms and power, sketch path against exact (with the default effect floors and
    with floors 0, where the calibrated thresholds alone decide), and the Wasserstein bound
    against the actual error. The sketch is built in four parts, as row groups would be."""
    from driftloop.config import DriftSettings
    from driftloop.drift.engine import check_drift
    from driftloop.drift.profile import build_profile
    from driftloop.drift.sketch import BatchSummary, NumericSummary, fine_edges
    from driftloop.drift.streaming import check_summary

    settings = {
        "default floors": DriftSettings(exact_batch_max=1_000),
        "floors 0": DriftSettings(
            exact_batch_max=1_000,
            effect_floor={"mean_shift": 0.0, "wasserstein": 0.0, "jensen_shannon": 0.0},
        ),
    }
    reference = pd.read_parquet(reference_file())[NUMERIC]
    profile = build_profile(
        reference, [], None, False, statistics=["mean_shift", "wasserstein", "jensen_shannon"],
        calibration_draws=1000,
    )  # fmt: skip
    rng = np.random.default_rng(SEED + 99)
    results: dict[str, Any] = {}
    for label, shift in SHIFTS.items():
        trials = clean if shift[0] is None else shifted
        counts: dict[str, int] = {}
        ratios, bounds, excess = [], [], []
        for _ in range(trials):
            frame = _batch(rng, profile, rows, shift)
            summaries = {}
            for name in NUMERIC:
                summary = NumericSummary(fine_edges(profile.columns[name]))
                for part in np.array_split(frame[name].to_numpy(), 4):
                    summary.add(part)
                summaries[name] = summary
            for setting, drift in settings.items():
                verdicts = {
                    "sketch": check_summary(profile, BatchSummary(rows, summaries), drift),
                    "exact": check_drift(profile, frame, drift),
                }
                for path, verdict in verdicts.items():
                    key = f"{setting}|{path}"
                    counts[key] = counts.get(key, 0) + sum(f.drifted for f in verdict.features)
                    counts[key + "|w"] = counts.get(key + "|w", 0) + sum(
                        f.tests["wasserstein"].flag for f in verdict.features
                    )
            for s, e in zip(verdicts["sketch"].features, verdicts["exact"].features, strict=True):
                got, truth = s.tests["wasserstein"], e.tests["wasserstein"]
                bounds.append(got.sketch_bound)
                error = abs(got.value - truth.value)
                excess.append(error - got.sketch_bound)  # <= 0 (to rounding): the bound holds
                if got.sketch_bound > 1e-9:
                    ratios.append(error / got.sketch_bound)
        tests = trials * len(NUMERIC)
        results[label] = {
            "trials": trials,
            "feature_tests": tests,
            "rates": {key: count / tests for key, count in counts.items()},
            "bound_median": float(np.median(bounds)),
            "bound_max": float(np.max(bounds)),
            "error_over_bound_max": float(np.max(ratios)) if ratios else 0.0,
            "error_over_bound_median": float(np.median(ratios)) if ratios else 0.0,
            "error_minus_bound_max": float(np.max(excess)),
        }
        print(f"  {label}: {results[label]}", flush=True)
    level = settings["default floors"].false_alarm_rate
    return {"rows": rows, "level": level, "plans": results}


# ---------------------------------------------------------------------------------- main


def report(pipeline: dict[int, dict[str, Any]], stats: dict[str, Any] | None) -> str:
    lines = ["| rows | path | s | s/row (us) | ingest s | check s | cpu s | peak RSS MiB | load |"]
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for rows, r in sorted(pipeline.items()):
        if "error" in r:
            lines.append(f"| {rows:,} | error: {r['error']} |")
            continue
        peak = max(r["pipeline_peak_kib"], r["process_peak_kib"]) / 1024
        load = "/".join(f"{x:.2f}" for x in r["load_average"])
        lines.append(
            f"| {rows:,} | {'sketch' if r['sketched'] else 'exact'} | {r['seconds']:.1f} | "
            f"{r['seconds'] / rows * 1e6:.2f} | {r['ingest_seconds']:.1f} | "
            f"{r['check_seconds']:.1f} | {r['cpu_seconds']:.1f} | {peak:.0f} | {load} |"
        )
    done = {k: v for k, v in pipeline.items() if "error" not in v}
    if len(done) >= 2:
        small, large = min(done), max(done)
        ratio = (done[large]["seconds"] / large) / (done[small]["seconds"] / small)
        cpu = (done[large]["cpu_seconds"] / large) / (done[small]["cpu_seconds"] / small)
        lines.append(f"\ntime per row, {large:,} vs {small:,}: {ratio:.2f}x (CPU: {cpu:.2f}x)")
    if stats:
        lines.append(
            f"\nsketch path against exact, {stats['rows']:,} values per numeric column, "
            f"level {stats['level']} per feature; share of feature tests flagged "
            "(any statistic; Wasserstein alone in brackets)"
        )
        lines.append(
            "| batches | feature tests | default floors: sketch | exact | floors 0: sketch | "
            "exact | bound median, max (sd) | error/bound median, max | max error - bound |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, p in stats["plans"].items():
            r = p["rates"]
            cells = [
                f"{r[f'{s}|{path}']:.4f} ({r[f'{s}|{path}|w']:.4f})"
                for s in ("default floors", "floors 0")
                for path in ("sketch", "exact")
            ]
            lines.append(
                f"| {label} | {p['feature_tests']} | {' | '.join(cells)} | "
                f"{p['bound_median']:.2g}, {p['bound_max']:.2g} | "
                f"{p['error_over_bound_median']:.3f}, {p['error_over_bound_max']:.3f} | "
                f"{p['error_minus_bound_max']:.1e} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options ``drift_bench.py --pipeline`` forwards, under the same names."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline-sizes", default="1000000,20000000", help="rows, comma-separated"
    )
    parser.add_argument(
        "--pipeline-exact-max", type=int, help="drift.exact_batch_max (default: 1M)"
    )
    parser.add_argument("--stat-rows", type=int, default=200_000, help="values per sketched batch")
    parser.add_argument("--stat-trials", type=int, default=60, help="clean batches (0: skip)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    add_smoke(parser)
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"drift_pipeline: ignoring {' '.join(ignored)} (drift_bench.py options)")
    if args.smoke:  # both paths (20k exact, 50k sketched) and a few statistical trials
        args.pipeline_sizes, args.pipeline_exact_max = "20000,50000", 30_000
        args.stat_rows, args.stat_trials, args.timeout = 10_000, 4, 120.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = child_pipeline(args.rows, args.pipeline_exact_max)
        Path(args.out).write_text(json.dumps(result))
        return 0
    pipeline: dict[int, dict[str, Any]] = {}
    for rows in [int(s) for s in args.pipeline_sizes.split(",") if s]:
        started = time.perf_counter()
        ensure_pipeline_data(rows)
        print(f"{rows:,} rows: data ready in {time.perf_counter() - started:.0f} s", flush=True)
        pipeline[rows] = run_pipeline_child(rows, args)
        print(f"  {pipeline[rows]}", flush=True)
    stats = None
    if args.stat_trials:
        ensure_reference()
        stats = statistical_side(args.stat_rows, args.stat_trials, args.stat_trials // 2)
    text = report(pipeline, stats)
    stamp = "smoke" if args.smoke else time.strftime("%Y%m%dT%H%M%S")
    out = DATA_DIR / f"pipeline-results-{stamp}.json"
    out.write_text(json.dumps({"pipeline": pipeline, "statistics": stats}, indent=1))
    print("\n" + text)
    return 1 if any("error" in r for r in pipeline.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
