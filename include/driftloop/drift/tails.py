"""Tail tests: how many batch rows lie past the reference rows' most extreme 1%.

Why: a client that sends a feature in other units is a few percent of a window gone far off,
which moves a batch's mean rank little but puts many rows past the reference's extremes. The
count of batch values past the k-th most extreme of m held-out values is, under no drift,
beta-binomial(n, k, m - k + 1) whatever the values' law (the batch's rows and the held-out
ones are exchangeable; ties only make it conservative), so its p-value is exact at every
batch size, the held-out sample's own luck included. ``driftloop.drift.multivariate`` runs it
on the rows' reconstruction errors and on both tails of every numeric feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import betabinom

TAIL_SHARE = 0.01
"""The tail test's bar: the held-out errors' top 1% (the k-th largest, k = 1% of them)."""
TAIL_FLOOR = 2.0
"""The tail test flags only a batch with at least twice the expected share of rows past the
bar: one row in a hundred more, a client's worth, not a rounding of a huge batch."""


@dataclass(frozen=True)
class TailTest:
    """How many batch rows lie past the reference rows' most extreme ``expected_share``: of the
    held-out rows' errors (``feature`` None: rows that rebuild worse), or of one numeric
    feature's values over all reference rows the fit saw (``side`` high or low). A window's
    tail tests are ``tests`` in all; this is the one that decided (the smallest p-value among
    those past the floor, else the smallest)."""

    bar: float  # the k-th largest held-out error, or the feature's bar in its own units
    expected_share: float  # k / (m + 1): the share of rows past the bar under no drift
    count: int  # batch rows past the bar
    rows: int
    p_value: float  # beta-binomial, exact (this test alone)
    feature: str | None = None
    side: str = "high"
    tests: int = 1  # Bonferroni: the tail tests share their half of the level

    @property
    def share(self) -> float:
        return self.count / self.rows if self.rows else 0.0

    @property
    def ratio(self) -> float:
        return self.share / self.expected_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "bar": self.bar,
            "expected_share": self.expected_share,
            "share": self.share,
            "count": self.count,
            "p_value": self.p_value,
            "floor_ratio": TAIL_FLOOR,
            "feature": self.feature,
            "side": self.side,
            "tests": self.tests,
        }


def tail_rank(m: int) -> int:
    """k: the bar is the k-th most extreme of m held-out values (the top ``TAIL_SHARE``)."""
    return min(m, max(1, math.ceil(TAIL_SHARE * (m + 1))))


def feature_bars(held: np.ndarray) -> np.ndarray:
    """Each column's k-th smallest and k-th largest value (k: :func:`tail_rank` of the rows)."""
    m = held.shape[0]
    if m == 0 or held.shape[1] == 0:
        return np.empty((2, 0))
    k = tail_rank(m)
    ordered = np.sort(held, axis=0)
    return np.vstack([ordered[k - 1], ordered[m - k]]).astype(np.float32).astype(float)


def tail_test(errors: np.ndarray, held_out: np.ndarray) -> TailTest:
    """Batch rows past the k-th largest of the sorted ``held_out`` errors (k the top
    ``TAIL_SHARE`` of them), and the exact p-value of that many or more."""
    m = held_out.size
    k = tail_rank(m)
    return exceedances(
        int(np.count_nonzero(errors > held_out[m - k])), errors.size, m, k, float(held_out[m - k])
    )


def exceedances(count: int, n: int, m: int, k: int, bar: float, **named: Any) -> TailTest:
    """``count`` of ``n`` batch values past the k-th most extreme of ``m`` held-out ones:
    beta-binomial(n, k, m - k + 1) under no drift, whatever the values' law (the batch's and
    the held-out rows are exchangeable; ties only make it conservative)."""
    p_value = float(betabinom.sf(count - 1, n, k, m - k + 1)) if count else 1.0
    return TailTest(bar, k / (m + 1), count, n, min(max(p_value, 0.0), 1.0), **named)
