"""Decisions that keep their error rates (issues 26 and 27): one run, every table.

Why: each decision driftloop takes (the drift verdict, the gate, the A/B test, the decay
test) promises an error rate. This script measures those rates, and the power beside them,
over a grid of production-shaped conditions, with 95% intervals, in one run. The tables are
sections; each is a script of its own beside this one (``decision_tables_drift.py`` with
``decision_tables_storm.py``, ``decision_tables_ab.py``, ``decision_tables_multivariate.py``,
``decision_tables_detectors.py``),
and this script only runs them, one child process each, with its own options, in turn.

A cell meets its target when the estimate is at most the target and its 95% upper bound at
most 1.3x the target.

Run from the repository root:

    .venv/bin/python benchmarks/decisions.py              # every section, full size
    .venv/bin/python benchmarks/decisions.py --smoke      # a minute, to show it still runs
    .venv/bin/python benchmarks/decisions.py --only drift

Full size costs about 24 CPU hours on two cores (docs/benchmarks.md), more than one sitting.
In pieces:

    .venv/bin/python benchmarks/decisions.py --workers 2 \
        --chunk-references 2 --store benchmarks/results [--only detectors]

splits each cell's references into chunks of two (each with a seed of its own, so the two
workers share the widest cells), keeps each finished chunk under ``benchmarks/results`` with the
hashes of the sources it ran (driftloop's modules, the section's, its data files, the lock and
the package versions), and on the next run with the same options reuses every chunk whose
sources are unchanged and runs the rest; the run that finds every chunk prints every table from
chunks of the checked-out code (``support/chunks.py``). The A/B and storm sections are not
chunked (minutes each) and run again: fill the store section by section with ``--only``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from support.common import print_header
from support.decisions import section_parser

HERE = Path(__file__).resolve().parent
SECTIONS = {  # each section's scripts, run in turn
    "drift": ("decision_tables_drift.py", "decision_tables_storm.py"),
    "ab": ("decision_tables_ab.py",),
    "multivariate": ("decision_tables_multivariate.py",),
    "detectors": ("decision_tables_detectors.py",),
}


def main(argv: list[str] | None = None) -> int:
    parser = section_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    passed = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(passed)
    forwarded, skip = [], False
    for arg in passed:  # everything but --only, for the sections
        if not skip and arg != "--only" and not arg.startswith("--only="):
            forwarded.append(arg)
        skip = arg == "--only"
    if args.smoke:  # the sections' own smoke runs are in CI already: the least that runs
        forwarded += [] if args.batches else ["--batches", "5"]
        forwarded += [] if args.references else ["--references", "1"]
        if not args.tables:  # one drift table, no storm (its own smoke run covers it)
            args.tables, forwarded = ["numeric"], [*forwarded, "--tables", "numeric"]
        # one section shows the driver runs its children; each section's own script has a
        # smoke run of its own in CI (a child process costs a few seconds of imports)
        args.only = args.only or ["drift"]
    print_header("Decisions: error rates and power")
    for name in args.only or list(SECTIONS):
        started = time.perf_counter()
        for script in SECTIONS[name]:
            if script == "decision_tables_storm.py" and args.tables and "storm" not in args.tables:
                continue
            command = [sys.executable, str(HERE / script), *forwarded]
            if subprocess.run(command, check=False).returncode:
                print(f"{script} failed", file=sys.stderr)
                return 1
        print(f"\n_{name}: {time.perf_counter() - started:.0f} s_\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
