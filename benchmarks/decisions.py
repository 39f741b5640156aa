"""Decisions that keep their error rates (issues 26 and 27): one run, every table.

Why: each decision driftloop takes (the drift verdict, the gate, the A/B test, the decay
test) promises an error rate. This script measures those rates, and the power beside them,
over a grid of production-shaped conditions, with 95% intervals, in one run. The tables are
sections; each lives in its own module beside this one (``decision_tables_drift.py``,
``decision_tables_ab.py``), and this script only runs them and prints Markdown.

A cell meets its target when the estimate is at most the target and its 95% upper bound at
most 1.3x the target.

Run from the repository root:

    .venv/bin/python benchmarks/decisions.py              # every section, full size
    .venv/bin/python benchmarks/decisions.py --smoke      # a minute, to show it still runs
    .venv/bin/python benchmarks/decisions.py --only drift
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = {
    "drift": "decision_tables_drift",
    "ab": "decision_tables_ab",
    "multivariate": "decision_tables_multivariate",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--workers", type=int, default=1)
    # reduced runs (a section that does not know them ignores them)
    parser.add_argument("--tables", action="append", help="only these tables of a section")
    parser.add_argument("--batches", type=int, help="repetitions per cell instead of the default")
    parser.add_argument("--references", type=int, help="references per cell (drift)")
    args = parser.parse_args(argv)
    print(
        f"# Decisions: error rates and power\n\nmachine: {platform.platform()}, "
        f"python {platform.python_version()}; command: {' '.join(sys.argv)}\n"
    )
    for name in args.only or list(SECTIONS):
        started = time.perf_counter()
        module = importlib.import_module(SECTIONS[name])
        module.run(args)
        print(f"\n_{name}: {time.perf_counter() - started:.0f} s_\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
