"""What the decision-table sections share: their options, their intervals, their workers.

Why: ``decisions.py`` runs each section (``decision_tables_*.py``) as a script of its own,
with the same options, so a section can also be run alone and none imports another.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import beta

from support import chunks
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
    # long runs in pieces (support/chunks.py): workers share a cell, a stopped run goes on
    parser.add_argument(
        "--chunk-references",
        type=_positive,
        metavar="N",
        help="split each cell into chunks of N references, each with a seed of its own",
    )
    parser.add_argument(
        "--store",
        type=_directory,
        metavar="DIR",
        help="keep each chunk's result here and reuse those whose sources are unchanged",
    )
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _directory(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; the store is a directory")
    return path


def run_section(run: Callable[[argparse.Namespace], None], doc: str | None) -> int:
    """Run a section alone with the options every section takes (``doc``'s first line is its
    description); ``decisions.py`` runs each section's script this way, in a child process."""
    run(section_parser((doc or "").splitlines()[0]).parse_args())
    return 0


def run_all(
    function: Callable[..., Any],
    jobs: list[tuple],
    workers: int,
    arrived: Callable[[int, Any], Any] | None = None,
) -> list[Any]:
    """``function(*job)`` for every job, results in the jobs' order; in ``workers`` processes
    when above one. Each result is shown on stderr as it arrives, in the order they finish
    (full-size runs take hours), or what ``arrived(position, result)`` returns for it."""
    started, results = time.perf_counter(), [None] * len(jobs)

    def show(done: int, position: int, result: Any) -> None:
        results[position] = result
        shown = arrived(position, result) if arrived else result
        elapsed = time.perf_counter() - started
        print(f"[{done}/{len(jobs)}, {elapsed:.0f} s] {shown}", file=sys.stderr, flush=True)

    if workers <= 1:
        for position, job in enumerate(jobs):
            show(position + 1, position, function(*job))
        return results
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(function, *job): position for position, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), 1):
            show(done, futures[future], future.result())
    return results


def run_cells(function: Callable[..., Any], jobs: list[tuple], args: argparse.Namespace) -> list:
    """``function(*job)`` for every cell ``(*cell, batches, references, seed)``, as ``run_all``
    does, split into chunks of ``--chunk-references`` references (one chunk per cell without
    it: today's draws) that share the workers; with ``--store``, each chunk's result is kept as
    it arrives and reused by later runs while its sources are unchanged (support/chunks.py)."""
    pieces = chunks.split(jobs, getattr(args, "chunk_references", None))
    root = getattr(args, "store", None)
    section = f"{Path(inspect.getfile(function)).stem}/{function.__name__}"
    store = chunks.Store(root, section) if root else None
    if store:
        chunks.sources()  # hashed before the workers fork: a file edited later stops the run
    results: list[Any] = [store.load(piece) if store else None for piece in pieces]
    missing = [number for number, result in enumerate(results) if result is None]
    if store:
        print(
            f"{function.__name__}: {len(pieces) - len(missing)} of {len(pieces)} chunks from"
            f" {store.root}, {len(missing)} to run",
            file=sys.stderr,
            flush=True,
        )

    def arrived(position: int, outcome: tuple[Any, dict[str, str], float]) -> str:
        number, (result, sources, cpu) = missing[position], outcome
        piece = pieces[number]
        results[number] = result
        if store:
            store.save(piece, result, sources, cpu)
        return f"cell {piece.cell + 1}, chunk {piece.index + 1}: {result!r:.200}"

    jobs_left = [(function, pieces[number].job, store is not None) for number in missing]
    if jobs_left:
        run_all(chunks.run_chunk, jobs_left, args.workers, arrived)
    merged = []
    for position in range(len(jobs)):
        own = [number for number, piece in enumerate(pieces) if piece.cell == position]
        weights = [pieces[number].references for number in own]
        merged.append(chunks.merge([results[number] for number in own], weights))
    return merged


def show_reference(label: str, counts: Sequence[int], references: int, per_reference: int) -> None:
    """One line on stderr per finished reference: a full-size cell runs for hours, and the
    references finished so far are a result of their own if the run has to stop."""
    done = len(counts)
    print(
        f"  [{label}] reference {done}/{references}: {counts[-1]} of {per_reference} flagged"
        f" (so far {sum(counts)} of {done * per_reference:,})",
        file=sys.stderr,
        flush=True,
    )


def interval(k: float, n: float) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a proportion (``k`` and ``n`` may be effective,
    non-integer counts: see :func:`clustered_interval`)."""
    lower = 0.0 if k <= 0 else float(beta.ppf(0.025, k, n - k + 1))
    upper = 1.0 if k >= n else float(beta.ppf(0.975, k + 1, n - k))
    return lower, upper


def clustered_interval(
    counts: Sequence[int], sizes: int | Sequence[int]
) -> tuple[float, float, float]:
    """95% interval of a proportion observed in groups that share a cause: ``counts[j]`` of
    ``sizes[j]`` batches flagged for reference (or stream) ``j``; ``sizes`` may be one number,
    the same for every group. Returns (lower, upper, design effect).

    Why: batches checked against one reference share its sampling error, so they are not
    independent, and the binomial interval over all of them is too narrow where a few
    references carry the flags. Korn and Graubard's interval for clustered samples: the
    Clopper-Pearson one at the effective size ``n / deff``, where the design effect ``deff`` is
    the variance of the per-group rates over the binomial one at the mean group size (at least
    1; 1 with one batch per group, where the batches are independent).
    """
    sizes = [sizes] * len(counts) if isinstance(sizes, int) else list(sizes)
    kept = [(count, size) for count, size in zip(counts, sizes, strict=True) if size > 0]
    n = sum(size for _, size in kept)
    if n == 0:
        return 0.0, 1.0, 1.0
    rate = sum(count for count, _ in kept) / n
    deff = 1.0
    if len(kept) > 1 and n > len(kept) and 0.0 < rate < 1.0:
        rates = [count / size for count, size in kept]
        variance = sum((r - rate) ** 2 for r in rates) / (len(kept) - 1)
        deff = max(1.0, variance * (n / len(kept)) / (rate * (1.0 - rate)))
    effective = n / deff
    lower, upper = interval(rate * effective, effective)
    return lower, upper, deff


@dataclass(frozen=True)
class ClusteredRate:
    """A cell's rate over groups of batches (references, streams) with its clustered 95%
    interval, and what a reader needs to judge it: the design effect and the one group that
    contributed most."""

    flagged: int
    n: int
    lower: float
    upper: float
    deff: float
    most: int
    most_of: int

    @classmethod
    def of(cls, counts: Sequence[int], sizes: int | Sequence[int]) -> ClusteredRate:
        sizes = [sizes] * len(counts) if isinstance(sizes, int) else list(sizes)
        lower, upper, deff = clustered_interval(counts, sizes)
        most, most_of = max(zip(counts, sizes, strict=True), default=(0, 0))
        return cls(sum(counts), sum(sizes), lower, upper, deff, most, most_of)

    @property
    def rate(self) -> float:
        return self.flagged / self.n if self.n else float("nan")

    def meets(self, target: float, power: bool = False) -> bool:
        """At most ``target`` with the upper bound at most 1.3x it; for power, at least
        ``target`` with the lower bound at most 1.3x the miss rate below it."""
        if power:
            return self.rate >= target and self.lower >= 1.0 - 1.3 * (1.0 - target)
        return self.rate <= target and self.upper <= 1.3 * target

    def text(self, group: str = "reference", counted: bool = True) -> str:
        """``0.80% [0.46%, 1.30%] of 2,000``, with ``(deff 3.1; one reference 5 of 100)``
        where the groups differed more than chance allows."""
        shown = f"{self.rate:.2%} [{self.lower:.2%}, {self.upper:.2%}]"
        shown += f" of {self.n:,}" if counted else ""
        if self.deff > 1.0:
            shown += f" (deff {self.deff:.1f}; one {group} {self.most} of {self.most_of})"
        return shown
