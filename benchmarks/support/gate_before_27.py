"""The gate's MAE/RMSE interval as issue 27 first shipped it, kept to measure "before" beside
today's in the same run (``decision_tables_ab.py``): the wider of Fieller's t interval and a
studentized bootstrap (bootstrap-t) of the ratio of paired mean losses. Not used by driftloop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from driftloop.gate import statistics as gate

RESAMPLES = 999
_BLOCK = 4_000_000
BEFORE = "studentized bootstrap and fieller t intervals, the wider (issue 27, first round)"


def bootstrap_ratio_interval(
    c: np.ndarray, p: np.ndarray, alpha: float, seed: int = 0
) -> tuple[float, float, float]:
    """Bootstrap-t bounds for ``mean(c) / mean(p)``, pairs resampled together; pivot
    ``(R* - R) / se*`` with the delta-method standard error recomputed per resample."""
    c, p = np.asarray(c, dtype=float), np.asarray(p, dtype=float)
    n = len(c)
    if n < 2 or float(p.mean()) <= 0:
        ratio = float(c.mean()) / float(p.mean()) if n and float(p.mean()) > 0 else math.inf
        return ratio, -math.inf, math.inf
    ratio = float(c.mean()) / float(p.mean())
    se = float(np.std(c - ratio * p, ddof=1)) / math.sqrt(n) / float(p.mean())
    if se == 0:
        return ratio, ratio, ratio
    rng, pivots, block = np.random.default_rng(seed), [], max(1, _BLOCK // n)
    for start in range(0, RESAMPLES, block):
        rows = rng.integers(0, n, (min(block, RESAMPLES - start), n))
        cb, pb = c[rows], p[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            rb = cb.mean(axis=1) / pb.mean(axis=1)
            seb = np.std(cb - rb[:, None] * pb, axis=1, ddof=1) / math.sqrt(n) / pb.mean(axis=1)
            pivots.append((rb - ratio) / seb)
    pivot = np.concatenate(pivots)
    pivot = pivot[~np.isnan(pivot)]
    low_q, high_q = np.quantile(pivot, [alpha, 1 - alpha], method="inverted_cdf")
    return ratio, ratio - float(high_q) * se, ratio - float(low_q) * se


def before_interval(c: np.ndarray, p: np.ndarray, metric: str, alpha: float) -> gate.Interval:
    ratio, low, high = bootstrap_ratio_interval(c, p, alpha)
    _, fieller_low, fieller_high = gate.loss_ratio_interval(c, p, alpha)
    low, high = min(low, fieller_low), max(high, fieller_high)
    if metric == "rmse":
        ratio, low, high = (math.sqrt(max(v, 0.0)) for v in (ratio, low, high))
    return gate.Interval(1 - ratio, 1 - high, 1 - low)


@contextmanager
def gate_before() -> Iterator[None]:
    """Within the block, ``gate.judge`` bounds MAE and RMSE as before (this process only)."""
    saved = dict(gate.INTERVALS)
    gate.INTERVALS["mae"] = (BEFORE, lambda c, p, a: before_interval(c, p, "mae", a))
    gate.INTERVALS["rmse"] = (BEFORE, lambda c, p, a: before_interval(c, p, "rmse", a))
    try:
        yield
    finally:
        gate.INTERVALS.update(saved)
