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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.calibration_data import populations, power_cells, run_dir
from support.calibration_driftloop import run_driftloop
from support.calibration_evidently import evidently_child, start_evidently_child
from support.calibration_report import report
from support.common import add_smoke, skipped_in_smoke

SEED = 20261129
SIZES = (30, 50, 100, 250, 1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--quick`` and ``--smoke`` override the sizes."""
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
    """Progress lines on stderr, with the minutes since the start."""

    def say(message: str) -> None:
        print(f"[{(time.time() - started) / 60:5.1f} min] {message}", file=sys.stderr, flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    """Evidently's child when ``--child``; else the whole run and its report."""
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
        script = Path(__file__).resolve()  # the child runs this script with --child
        child = start_evidently_child(script, data, cells, args, out, started)
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


if __name__ == "__main__":
    sys.exit(main())
