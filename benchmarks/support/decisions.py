"""What the decision-table sections share: their options, their intervals, their workers.

Why: ``decisions.py`` runs each section (``decision_tables_*.py``) as a script of its own,
with the same options, so a section can also be run alone and none imports another.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from scipy.stats import beta

from support.common import add_smoke

SEED = 20261206


def section_parser(description: str) -> argparse.ArgumentParser:
    """The options every section takes (``decisions.py`` passes its own on)."""
    parser = argparse.ArgumentParser(description=description)
    add_smoke(parser, "tiny sizes: checks it runs (well under a minute)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=1)
    # reduced runs (a section that does not know them ignores them)
    parser.add_argument("--tables", action="append", help="only these tables of a section")
    parser.add_argument(
        "--label", action="append", help="only the cells whose label contains this text"
    )
    parser.add_argument(
        "--rows",
        action="append",
        help="only the cells of these sizes, REFERENCE/BATCH (e.g. 100000/30000)",
    )
    parser.add_argument("--batches", type=int, help="repetitions per cell instead of the default")
    parser.add_argument("--references", type=int, help="references per cell (drift)")
    return parser


def run_section(run: Callable[[argparse.Namespace], None], doc: str | None) -> int:
    """Run a section alone with the options every section takes (``doc``'s first line is its
    description); ``decisions.py`` runs each section's script this way, in a child process."""
    run(section_parser((doc or "").splitlines()[0]).parse_args())
    return 0


def run_all(function: Callable[..., Any], jobs: list[tuple], workers: int) -> list[Any]:
    """``function(*job)`` for every job, in order; in ``workers`` processes when above one.
    Each result is shown on stderr as it arrives (full-size runs take hours)."""
    started, results = time.perf_counter(), []
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers))
            arrivals = pool.map(function, *zip(*jobs, strict=True))
        else:
            arrivals = (function(*job) for job in jobs)
        for done, result in enumerate(arrivals, 1):
            results.append(result)
            elapsed = time.perf_counter() - started
            print(f"[{done}/{len(jobs)}, {elapsed:.0f} s] {result}", file=sys.stderr, flush=True)
    return results


def interval(k: float, n: float) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a proportion (``k`` and ``n`` may be effective,
    non-integer counts: see :func:`clustered_interval`)."""
    lower = 0.0 if k <= 0 else float(beta.ppf(0.025, k, n - k + 1))
    upper = 1.0 if k >= n else float(beta.ppf(0.975, k + 1, n - k))
    return lower, upper


def clustered_interval(counts: list[int], per_group: int) -> tuple[float, float, float]:
    """95% interval of a proportion observed in groups that share a cause: ``counts[j]`` of
    ``per_group`` batches flagged for reference ``j``. Returns (lower, upper, design effect).

    Why: batches checked against one reference share its sampling error, so they are not
    independent, and the binomial interval over all of them is too narrow where a few
    references carry the flags. Korn and Graubard's interval for clustered samples: the
    Clopper-Pearson one at the effective size ``n / deff``, where the design effect ``deff`` is
    the variance of the per-reference rates over the binomial one (at least 1; 1 with one
    batch per reference, where the batches are independent).
    """
    groups, n = len(counts), len(counts) * per_group
    rate = sum(counts) / n
    deff = 1.0
    if groups > 1 and per_group > 1 and 0.0 < rate < 1.0:
        rates = [count / per_group for count in counts]
        variance = sum((r - rate) ** 2 for r in rates) / (groups - 1)
        deff = max(1.0, variance * per_group / (rate * (1.0 - rate)))
    effective = n / deff
    lower, upper = interval(rate * effective, effective)
    return lower, upper, deff
