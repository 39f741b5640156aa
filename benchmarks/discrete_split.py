"""Clean binary flags (1% ones) against a 100,000-row reference: the share of batches whose
permutation p-value is at most 1%, per statistic (Wasserstein, mean shift), with the exact
split of a pool with few distinct values (``permutation.discrete_split_null``, what the check
runs) beside the Gaussian-middle split it replaced (``pooled_split_null``), on the same batches.

Run: nice -n 10 .venv/bin/python benchmarks/discrete_split.py [--batches 2000] [--before 300]
(--smoke: 50 batches). The before arm costs about 0.1 CPU s a batch, so it runs on the first
``--before`` batches only. Figures: docs/benchmarks.md ("Flags split exactly").
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
from scipy.stats import binomtest

from driftloop.drift import permutation

LEVEL, DRAWS, REFERENCE = 0.01, 1_000, 100_000


def _p_value(null: np.ndarray, observed: float) -> float:
    null = np.sort(null)
    at_least = null.size - np.searchsorted(null, observed * (1 - 1e-9), side="left")
    return (1 + at_least) / (null.size + 1)


def _interval(flags: int, batches: int) -> str:
    ci = binomtest(flags, max(batches, 1)).proportion_ci(0.95, method="exact")
    return f"{flags / max(batches, 1):.2%} [{ci.low:.2%}, {ci.high:.2%}] of {batches}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2_000)
    parser.add_argument("--before", type=int, default=300)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    batches, before = (50, 10) if args.smoke else (args.batches, args.before)
    rng = np.random.default_rng(args.seed)
    print("| batch rows | statistic | exact split (now) | Gaussian middle (before) | CPU s |")
    print("|---|---|---|---|---|")
    for rows in (100_000, 30_000):
        for name in ("wasserstein", "mean_shift"):
            now = then = 0
            started = time.process_time()
            for index in range(batches):
                reference = (rng.random(REFERENCE) < 0.01).astype(float)
                batch = (rng.random(rows) < 0.01).astype(float)
                pooled = permutation.pooled_sorted(np.sort(reference), np.sort(batch))
                observed = abs(batch.mean() - reference.mean())  # both statistics, for 0/1
                test = permutation.permutation_test(
                    name, pooled, rows, REFERENCE, observed, DRAWS, LEVEL
                )
                now += test.p_value <= LEVEL
                if index < before:
                    seed = hashlib.sha256(pooled.tobytes()).digest()
                    draw = np.random.default_rng(int.from_bytes(seed[:8], "little"))
                    null = permutation.pooled_split_null(name, pooled, rows, DRAWS, draw)
                    then += _p_value(null, observed) <= LEVEL
            seconds = time.process_time() - started
            print(
                f"| {rows:,} | {name} | {_interval(now, batches)} | "
                f"{_interval(then, before)} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
