"""Drift check benchmark (issue 3): driftloop against plain scipy and Evidently's DataDriftPreset.

Why: the issue asks that driftloop check a 1M-row batch at least 10x faster than Evidently, with
at most a third of its peak memory. This script measures that on one machine in one run, and
checks that driftloop's Wasserstein and Jensen-Shannon values equal a naive scipy computation,
so that the speed does not come from computing something else.

What: seeded synthetic data, 13 columns (11 numeric, 2 categorical, drift in 4 of them), with a
reference and a current frame of the same number of rows, written once per size as Parquet under
var/bench-data/. Every contender runs in its own child process, so its peak RSS (the kernel's
high-water mark of the whole process, not tracemalloc) and its time are its own:

- driftloop build: ``build_profile`` on the reference; saved as .npz (done once per reference);
- driftloop: loads that profile and the current frame, then ``check_drift(...).to_dict()``;
- driftloop exact: the same with ``exact_max`` = rows (only for sizes above the default);
- scipy: ``wasserstein_distance`` and ``jensenshannon`` per column on the raw arrays, the
  reference re-sorted and re-binned on every check;
- evidently: ``Report([DataDriftPreset()]).run(...)`` and ``snapshot.dict()``, in Evidently's own
  virtualenv (var/bench-evidently-venv, pinned by benchmarks/requirements-evidently.txt).

Evidently's environment is created by this script when missing, or by hand:

    .venv/bin/uv venv --python python3.11 var/bench-evidently-venv
    .venv/bin/uv pip sync --python var/bench-evidently-venv/bin/python \\
        benchmarks/requirements-evidently.txt

Run from the repository root (about 4 minutes on 2 cores; on a quiet machine, as it times):

    .venv/bin/python benchmarks/drift_bench.py --sizes 10000,100000,1000000

``--pipeline`` measures batches larger than memory instead (ingest, validation and check at 1M
and 20M rows; the sketch path's false alarms and power): it runs benchmarks/drift_pipeline.py
with the other options. ``--smoke``: 2,000 rows, one check per child, without Evidently.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support import drift_data
from support.common import (
    EVIDENTLY_PYTHON,
    ROOT,
    add_smoke,
    child_env,
    ensure_evidently_venv,
    proc_status,
    reset_peak,
    skipped_in_smoke,
    wait_child,
)
from support.common import versions as library_versions
from support.drift_data import CATEGORICAL, DATA_DIR, NUMERIC

BINS = 10  # DriftSettings().bins
DEFAULT_EXACT_MAX = 100_000  # DriftSettings().exact_reference_max


def data_path(rows: int, part: str) -> Path:
    return drift_data.data_path(rows, part, DATA_DIR)  # DATA_DIR: before_after.py repoints it


def profile_path(rows: int, exact_max: int) -> Path:
    return data_path(rows, "reference").with_name(f"profile-exact{exact_max}.npz")


def ensure_data(rows: int) -> float:
    """Write reference and current once per size (cached by version and seed); return seconds."""
    return drift_data.ensure_data(rows, DATA_DIR)


# ----------------------------------------------------------------------- child: measuring


def timed(task: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = task()
    return value, time.perf_counter() - start


def timed_cpu(task: Callable[[], Any]) -> tuple[Any, float, float]:
    """Wall and CPU seconds: CPU time barely moves when another process shares the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = task()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def measure(task: Callable[[], Any], repeat: int) -> tuple[Any, dict[str, Any]]:
    """Run ``task`` ``repeat`` times after a baseline; times each run and the peak RSS over all."""
    gc.collect()
    before = proc_status()
    peak_was_reset = reset_peak()
    seconds, cpu_seconds, value = [], [], None
    for _ in range(repeat):
        value = None  # the previous result must not sit in memory during the next run
        gc.collect()
        value, elapsed, cpu = timed_cpu(task)
        seconds.append(elapsed)
        cpu_seconds.append(cpu)
    after = proc_status()
    return value, {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "baseline_kib": before["VmRSS"],
        "setup_peak_kib": before["VmHWM"],
        "check_peak_kib": after["VmHWM"],
        "peak_was_reset": peak_was_reset,
    }


def versions(*modules: str) -> dict[str, str]:
    return library_versions("numpy", "pandas", "scipy", "pyarrow", *modules)


def read_frame(rows: int, part: str) -> pd.DataFrame:
    return pd.read_parquet(data_path(rows, part))


# ---------------------------------------------------------------------- child: contenders


def child_profile(rows: int, repeat: int, exact_max: int) -> dict[str, Any]:
    """Build the reference profile once per reference (timed) and save it for the checks.

    The build includes the calibration of every statistic's thresholds (the default draws), as
    the monitor builds it, so "build plus check" is what a new reference really costs.
    """
    from driftloop.config import DriftSettings
    from driftloop.drift.profile import build_profile

    settings = DriftSettings()
    reference, load_s = timed(lambda: read_frame(rows, "reference"))
    profile, stats = measure(
        lambda: build_profile(
            reference,
            categorical=CATEGORICAL,
            target=None,
            target_is_categorical=False,
            bins=BINS,
            exact_max=exact_max,
            statistics=settings.statistics,
            calibration_draws=settings.draws,
        ),
        repeat,
    )
    _, save_s = timed(lambda: profile.save(profile_path(rows, exact_max)))
    return {**stats, "load_s": load_s, "save_s": save_s, "versions": versions("driftloop")}


def child_driftloop(rows: int, repeat: int, exact_max: int) -> dict[str, Any]:
    """A check as the monitor runs it: stored profile + current batch -> JSON-ready verdict."""
    from driftloop.config import DriftSettings
    from driftloop.drift.engine import check_drift
    from driftloop.drift.profile import ReferenceProfile

    (profile, current), load_s = timed(
        lambda: (ReferenceProfile.load(profile_path(rows, exact_max)), read_frame(rows, "current"))
    )
    settings = DriftSettings()
    verdict, stats = measure(lambda: check_drift(profile, current, settings).to_dict(), repeat)
    values = {f["name"]: driftloop_values(f["statistics"]) for f in verdict["features"]}
    bounds = [c.wasserstein_error_bound / c.std for c in profile.columns.values() if c.std > 0]
    return {
        **stats,
        "load_s": load_s,
        "status": verdict["status"],
        "drifted": verdict["drifted_features"],
        "values": values,
        "max_wasserstein_bound": max(bounds, default=0.0),
        "versions": versions("driftloop"),
    }


def driftloop_values(statistics_: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The comparable numbers of one feature of a verdict."""
    values = {"jensen_shannon": float(statistics_["jensen_shannon"]["value"])}
    if "wasserstein" in statistics_:
        values["wasserstein"] = float(statistics_["wasserstein"]["value"])
        values["mean_shift"] = float(statistics_["mean_shift"]["value"])
    return values


def naive_numeric(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    """The same statistics as driftloop, straight from scipy, nothing precomputed."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    std = float(reference.std(ddof=1))
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, BINS + 1)[1:-1]))
    ref_counts = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1
    )
    cur_counts = np.bincount(
        np.searchsorted(edges, current, side="right"), minlength=edges.size + 1
    )
    return {
        "mean_shift": abs(float(current.mean()) - float(reference.mean())) / std,
        "wasserstein": float(wasserstein_distance(reference, current)) / std,
        "jensen_shannon": float(jensenshannon(ref_counts, cur_counts, base=2)),
        "wasserstein_std0": float(wasserstein_distance(reference, current))
        / float(reference.std()),
    }


def naive_categorical(reference: pd.Series, current: pd.Series) -> dict[str, float]:
    """JS distance (base 2) of level frequencies, with one bin for levels the reference lacks."""
    from scipy.spatial.distance import jensenshannon

    ref_counts = reference.value_counts()
    cur_counts = current.value_counts().reindex(ref_counts.index, fill_value=0).to_numpy()
    p = np.append(ref_counts.to_numpy(), 0)
    q = np.append(cur_counts, len(current) - cur_counts.sum())
    return {"jensen_shannon": float(jensenshannon(p, q, base=2))}


def naive_check(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, dict[str, float]]:
    values = {}
    for name in NUMERIC:
        ref = reference[name].to_numpy(dtype=float)
        values[name] = naive_numeric(ref, current[name].to_numpy(dtype=float))
    for name in CATEGORICAL:
        values[name] = naive_categorical(reference[name], current[name])
    return values


def child_scipy(rows: int, repeat: int, exact_max: int) -> dict[str, Any]:
    """Plain scipy on the raw reference and current arrays, per column."""
    (reference, current), load_s = timed(
        lambda: (read_frame(rows, "reference"), read_frame(rows, "current"))
    )
    values, stats = measure(lambda: naive_check(reference, current), repeat)
    return {**stats, "load_s": load_s, "values": values, "versions": versions()}


def evidently_values(snapshot: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Per-column drift scores (method, value) and the drifted count of a snapshot."""
    values, drifted = {}, float("nan")
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            values[config["column"]] = {"method": config["method"], "value": metric["value"]}
        elif config["type"].endswith("DriftedColumnsCount"):
            drifted = metric["value"]["count"]
    return values, drifted


def child_evidently(rows: int, repeat: int, exact_max: int) -> dict[str, Any]:
    """Evidently 0.7's DataDriftPreset with its defaults, as its documentation runs it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    (reference, current), load_s = timed(
        lambda: (read_frame(rows, "reference"), read_frame(rows, "current"))
    )
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)

    def check() -> dict[str, Any]:
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        return snapshot.dict()

    snapshot, stats = measure(check, repeat)
    values, drifted = evidently_values(snapshot)
    return {
        **stats,
        "load_s": load_s,
        "values": values,
        "drifted_count": drifted,
        "versions": versions("evidently"),
    }


CHILDREN: dict[str, Callable[[int, int, int], dict[str, Any]]] = {
    "profile": child_profile,
    "driftloop": child_driftloop,
    "scipy": child_scipy,
    "evidently": child_evidently,
}


def child_main(args: argparse.Namespace) -> None:
    result = CHILDREN[args.child](args.rows, args.repeat, args.exact_max)
    Path(args.out).write_text(json.dumps(result))


# ---------------------------------------------------------------------- parent: running


@dataclass(frozen=True)
class Contender:
    """One child process to run: a label, an interpreter and the child's role."""

    label: str
    python: Path
    child: str
    exact_max: int = DEFAULT_EXACT_MAX


def contenders(rows: int, skip_evidently: bool) -> list[Contender]:
    """Profile builds first: the driftloop checks load what they save."""
    here = Path(sys.executable)
    plan = [Contender("driftloop build", here, "profile")]
    if rows > DEFAULT_EXACT_MAX:
        plan.append(Contender("driftloop exact build", here, "profile", rows))
    plan.append(Contender("driftloop", here, "driftloop"))
    if rows > DEFAULT_EXACT_MAX:
        plan.append(Contender("driftloop exact", here, "driftloop", rows))
    plan.append(Contender("scipy", here, "scipy"))
    if not skip_evidently:
        plan.append(Contender("evidently", EVIDENTLY_PYTHON, "evidently"))
    return plan


def run_child(contender: Contender, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one contender in a fresh process; its result with the whole process's peak RSS."""
    stem = DATA_DIR / "runs" / f"{contender.label.replace(' ', '-')}-{rows}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    out, log = stem.with_suffix(".json"), stem.with_suffix(".log")
    out.unlink(missing_ok=True)
    command = [str(contender.python), str(Path(__file__).resolve()), "--child", contender.child]
    command += ["--rows", str(rows), "--repeat", str(args.repeat), "--out", str(out)]
    command += ["--exact-max", str(contender.exact_max)]
    load_average = os.getloadavg()[0]  # other work on the machine shows here
    start = time.perf_counter()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(), stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        code, usage, killed = wait_child(process.pid, args.timeout)
        process.returncode = code  # reaped by wait4 above
    wall_s = time.perf_counter() - start
    if killed or code != 0 or not out.is_file():
        reason = f"timeout after {args.timeout:.0f} s" if killed else f"exit {code}, see {log}"
        return {"label": contender.label, "error": reason, "wall_s": wall_s}
    result = json.loads(out.read_text())
    # ru_maxrss is lost by the reset in measure(); setup_peak_kib keeps the part before it.
    peak = max(usage.ru_maxrss, result["setup_peak_kib"], result["check_peak_kib"])
    return {
        **result,
        "label": contender.label,
        "wall_s": wall_s,
        "peak_kib": peak,
        "load_average": load_average,
    }


# --------------------------------------------------------------------- parent: reporting


def check_s(result: dict[str, Any] | None) -> float | None:
    """The check's time: the median of the repeated runs."""
    if not result or "error" in result:
        return None
    return statistics.median(result["seconds"])


def cpu_s(result: dict[str, Any] | None) -> float | None:
    """The check's CPU time (median): a cross-check of wall time on a shared machine."""
    if not result or "error" in result:
        return None
    return statistics.median(result["cpu_seconds"])


def peak_mib(result: dict[str, Any] | None) -> float | None:
    if not result or "error" in result:
        return None
    return result["peak_kib"] / 1024


def ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "-"
    return f"{numerator / denominator:.1f}x"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return f"{value:.0f}"


def summary_table(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """The headline: per size, time and absolute peak RSS of each contender, and the ratios."""
    lines = [
        "| rows | driftloop s | driftloop MiB | profile build s | scipy s | scipy MiB "
        "| Evidently s | Evidently MiB | Evidently/driftloop time | Evidently/driftloop CPU "
        "| Evidently/driftloop mem "
        "| scipy/driftloop time | scipy/driftloop mem |",
        "|" + "---:|" * 13,
    ]
    for rows, by_label in results.items():
        dl, sp, ev = (by_label.get(k) for k in ("driftloop", "scipy", "evidently"))
        cells = [
            f"{rows:,}",
            fmt(check_s(dl), "s"),
            fmt(peak_mib(dl)),
            fmt(check_s(by_label.get("driftloop build")), "s"),
            fmt(check_s(sp), "s"),
            fmt(peak_mib(sp)),
            fmt(check_s(ev), "s"),
            fmt(peak_mib(ev)),
            ratio(check_s(ev), check_s(dl)),
            ratio(cpu_s(ev), cpu_s(dl)),
            ratio(peak_mib(ev), peak_mib(dl)),
            ratio(check_s(sp), check_s(dl)),
            ratio(peak_mib(sp), peak_mib(dl)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_row(rows: int, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"| {rows:,} | {result['label']} | {result['error']} |" + " |" * 8
    seconds = result["seconds"]
    cells = [
        f"{rows:,}",
        result["label"],
        fmt(check_s(result), "s"),
        f"{min(seconds):.3f}-{max(seconds):.3f}",
        f"{result['load_s']:.3f}",
        fmt(peak_mib(result)),
        fmt(result["baseline_kib"] / 1024),
        fmt((result["check_peak_kib"] - result["baseline_kib"]) / 1024),
        f"{result['wall_s']:.1f}",
        f"{statistics.median(result['cpu_seconds']):.3f}",
        f"{result['load_average']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def detail_table(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Every child: check time (median, range), load, absolute peak, baseline and the check's
    rise."""
    lines = [
        "| rows | contender | check s (median) | range s | load s | peak RSS MiB "
        "| RSS after load MiB | check rise MiB | child wall s | check CPU s | load avg |",
        "|---:|---|" + "---:|" * 9,
    ]
    for rows, by_label in results.items():
        lines += [detail_row(rows, result) for result in by_label.values()]
    return lines


def max_difference(
    a: dict[str, Any], b: dict[str, Any], key: str, key_b: str | None = None
) -> float:
    """Largest |a - b| of one statistic over the columns both have."""
    key_b = key_b or key
    pairs = [(a[c][key], b[c][key_b]) for c in a if c in b and key in a[c] and key_b in b[c]]
    return max((abs(x - y) for x, y in pairs), default=float("nan"))


def evidently_wasserstein(values: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        c: {"wasserstein_std0": v["value"]}
        for c, v in values.items()
        if v["method"].startswith("Wasserstein")
    }


def agreement_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Max |driftloop - scipy| per statistic: equal numbers mean the same work was done."""
    lines = [
        "| rows | driftloop variant | max abs diff Wasserstein/std | sketch bound /std "
        "| max abs diff JS | max abs diff mean shift | Evidently vs scipy Wasserstein/std |",
        "|---:|---|" + "---:|" * 5,
    ]
    for rows, by_label in results.items():
        naive = by_label.get("scipy", {}).get("values")
        if not naive:
            continue
        ev = by_label.get("evidently", {}).get("values")
        ev_diff = (
            max_difference(evidently_wasserstein(ev), naive, "wasserstein_std0") if ev else None
        )
        for label in ("driftloop", "driftloop exact"):
            dl = by_label.get(label, {}).get("values")
            if not dl:
                continue
            cells = [
                f"{rows:,}",
                label,
                f"{max_difference(dl, naive, 'wasserstein'):.2e}",
                f"{by_label[label]['max_wasserstein_bound']:.2e}",
                f"{max_difference(dl, naive, 'jensen_shannon'):.2e}",
                f"{max_difference(dl, naive, 'mean_shift'):.2e}",
                "-" if ev_diff is None else f"{ev_diff:.2e}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """What each tool concluded, as a sanity check that all saw the planted drift."""
    lines = []
    for rows, by_label in results.items():
        dl = by_label.get("driftloop", {})
        ev = by_label.get("evidently", {})
        if "status" in dl:
            lines.append(f"{rows:,} rows: driftloop {dl['status']}, drifted {dl['drifted']}")
        if "drifted_count" in ev:
            flagged = ev["drifted_count"]
            lines.append(f"{rows:,} rows: Evidently drifted columns {flagged:.0f} of 13")
    return lines


def machine_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Where and with what the numbers were measured."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"date {date.today()}, {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    ]
    seen: dict[str, str] = {}
    for by_label in results.values():
        for label, result in by_label.items():
            if "versions" in result:
                seen.setdefault(label.split()[0], json.dumps(result["versions"]))
    lines += [f"{label}: {ver}" for label, ver in seen.items()]
    return lines


DETAIL_NOTE = (
    "Every child (check rise = peak during the check minus RSS after imports and load; "
    "load avg = the machine's 1-minute load average when the child started):"
)


def report(results: dict[int, dict[str, dict[str, Any]]]) -> str:
    sections = [
        machine_lines(results),
        ["", "Check wall time (median of runs) and absolute peak RSS of the whole child process:"],
        summary_table(results),
        ["", DETAIL_NOTE],
        detail_table(results),
        ["", "Agreement with plain scipy (same statistics, computed naively):"],
        agreement_lines(results),
        [""],
        verdict_lines(results),
    ]
    return "\n".join(line for section in sections for line in section)


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="rows, comma-separated")
    parser.add_argument("--skip-evidently", action="store_true", help="no Evidently child")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child")
    parser.add_argument("--repeat", type=int, default=3, help="timed checks per child")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--exact-max", type=int, default=DEFAULT_EXACT_MAX, help=argparse.SUPPRESS)
    big = parser.add_argument_group("batches larger than memory (benchmarks/drift_pipeline.py)")
    big.add_argument("--pipeline", action="store_true", help="ingest+validate+check, 1M vs 20M")
    big.add_argument("--pipeline-sizes", default="1000000,20000000", help="rows, comma-separated")
    big.add_argument("--pipeline-exact-max", type=int, help="drift.exact_batch_max (default: 1M)")
    big.add_argument("--stat-rows", type=int, default=200_000, help="values per sketched batch")
    big.add_argument("--stat-trials", type=int, default=60, help="clean batches (0: skip)")
    add_smoke(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pipeline:  # its own script, run as a child: no script imports another
        forwarded = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--pipeline"]
        script = Path(__file__).with_name("drift_pipeline.py")
        return subprocess.run([sys.executable, str(script), *forwarded], check=False).returncode
    if args.child:
        child_main(args)
        return 0
    if args.smoke:  # one small size, one timed check per child
        args.sizes, args.repeat, args.skip_evidently = "2000", 1, True
        skipped_in_smoke("the Evidently child")
    sizes = [int(size) for size in args.sizes.split(",")]
    if not args.skip_evidently:
        ensure_evidently_venv()
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for rows in sizes:
        print(f"{rows:,} rows: data ready in {ensure_data(rows):.1f} s", flush=True)
        results[rows] = {}
        for contender in contenders(rows, args.skip_evidently):
            result = run_child(contender, rows, args)
            results[rows][contender.label] = result
            print(f"  {contender.label}: {result.get('error') or 'done'}", flush=True)
    text = report(results)
    name = "results-smoke.json" if args.smoke else "results.json"
    (DATA_DIR / name).write_text(json.dumps(results, indent=1))
    print("\n" + text)
    failed = [label for by in results.values() for label, r in by.items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
