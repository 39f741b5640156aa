"""The per-segment tests' p-values against exact ones, far in the tail (issue 31, item 2).

Why: a segment's p-value is the smallest of its features' times their number (Bonferroni), and
Benjamini-Hochberg then reads it at ``segment_fdr`` / segments, so each feature's p-value is
read at 1e-3 to 1e-6: there an approximation that is fine at 5% can be too small several times
over, and clean batches flag segments more often than ``segment_fdr`` says. No sampling here:

1. Kolmogorov-Smirnov, at every lattice point of the statistic near the tail levels 5e-2 to
   1e-5, for segment-sized pairs (200 to 2,000 rows): the exact p-value (scipy's exact
   two-sample recursion, ``scipy.stats._stats_py._attempt_exact_2kssamp``, a private function)
   against scipy's asymptotic one (the first round) and ``segments.smirnov_p`` (today).
2. Categorical levels, 2-level tables: the chance of p <= alpha summed over the exact
   (hypergeometric) law of the batch count under no drift, for Pearson's chi-square (the first
   round) and ``segments.level_p`` (today); valid means at most alpha.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.stats import chi2_contingency, hypergeom, kstwo
from scipy.stats._stats_py import _attempt_exact_2kssamp
from support.common import add_smoke

from driftloop.drift.segments import level_p

LEVELS = (5e-2, 1e-2, 1e-3, 1e-4, 1e-5)


def ks_points(n: int, m: int) -> list[tuple[float, float, float]]:
    """(exact, first round, today) at the lattice points around each tail level."""
    g = math.gcd(n, m)
    lcm, en = n // g * m, n * m / (n + m)
    out = []
    for level in LEVELS:
        d = float(kstwo.isf(level, round(en)))
        start = math.ceil(d * lcm)
        for h in range(start - 2, start + 3):
            ok, _, exact = _attempt_exact_2kssamp(n, m, g, h / lcm, "two-sided")
            if ok and exact > 0:
                ours = min(1.0, float(kstwo.sf((h - 1) / lcm, max(1, math.floor(en)))))
                out.append((exact, float(kstwo.sf(h / lcm, round(en))), ours))
    return out


def level_rates(reference: int, batch: int, level: int) -> list[tuple[float, float, float]]:
    """(alpha, chance under no drift of p <= alpha: first round, today)."""
    counts = np.arange(0, batch + 1)
    law = hypergeom.pmf(counts, reference + batch, level, batch)

    def table(k: int) -> np.ndarray:
        return np.array([[level - k, reference - level + k], [k, batch - k]])

    inside = counts[counts <= level]
    ours = np.ones(len(counts))
    ours[inside] = [level_p(table(int(k))) for k in inside]
    pearson = np.ones(len(counts))
    middle = inside[(inside > 0) & (inside < level)]
    pearson[middle] = [chi2_contingency(table(int(k)), correction=False).pvalue for k in middle]
    return [(a, law[pearson <= a].sum(), law[ours <= a].sum()) for a in LEVELS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_smoke(parser, "three size pairs and one table (seconds)")
    args = parser.parse_args()
    started = time.perf_counter()
    pairs = [(200, 200), (200, 201), (200, 1000), (237, 1187), (390, 390), (388, 392)]
    pairs += [(1000, 1000), (250, 5000), (500, 500), (300, 900), (600, 2400), (1000, 1013)]
    rng = np.random.default_rng(31)
    pairs += [tuple(int(v) for v in sorted(rng.integers(200, 2000, 2))) for _ in range(12)]
    if args.smoke:
        pairs = pairs[:3]
    points = np.array([p for n, m in pairs for p in ks_points(n, m)])
    print("## Per-segment tests against exact p-values (issue 31)\n")
    print(f"Kolmogorov-Smirnov: {len(pairs)} size pairs, {len(points)} lattice points\n")
    print("| p-value | / exact: min | median | max | points under the exact one |")
    print("|---|---:|---:|---:|---:|")
    for name, column in (("first round: scipy asymptotic", 1), ("today: segments.smirnov_p", 2)):
        ratio = points[:, column] / points[:, 0]
        print(
            f"| {name} | {ratio.min():.3f} | {np.median(ratio):.3f} | {ratio.max():.3f} | "
            f"{int((ratio < 1).sum())} of {len(ratio)} |"
        )
    tables = [(1000, 200, 40), (1187, 237, 142), (5000, 200, 520)]
    print("\nCategorical, 2 levels: chance of p <= alpha under no drift, / alpha (valid: <= 1)\n")
    print("| reference rows | batch rows | level rows | alpha | Pearson chi-square | today |")
    print("|---:|---:|---:|---:|---:|---:|")
    for reference, batch, level in tables[:1] if args.smoke else tables:
        for alpha, pearson, ours in level_rates(reference, batch, level):
            print(
                f"| {reference:,} | {batch} | {level} | {alpha:g} | {pearson / alpha:.2f} | "
                f"{ours / alpha:.2f} |"
            )
    print(f"\n_segment tails: {time.perf_counter() - started:.0f} s_")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
