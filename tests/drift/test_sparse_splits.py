"""Sparse permutation splits for many-level categorical columns (issue 26, item 6): the same
null as the dense splits, at a cost of the small side's rows instead of the levels."""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp

from driftloop.drift.categorical import SPARSE_RATIO, sparse_js_null
from driftloop.drift.statistics import jensen_shannon_rows


def _pooled(levels: int, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(rows, rng.dirichlet(np.full(levels, 0.5)))
    return counts[counts > 0]


def test_one_split_gives_the_dense_distance_exactly() -> None:
    pooled = _pooled(300, 2_000, 1)
    small = 40
    for seed in range(5):
        # the sparse routine draws its rows with choice(); replay the same draw densely
        rows = np.random.default_rng(seed).choice(int(pooled.sum()), small, replace=False)
        side = np.bincount(
            np.searchsorted(np.cumsum(pooled), rows, side="right"), minlength=pooled.size
        )
        dense = jensen_shannon_rows((pooled - side)[None, :], side[None, :])[0]
        sparse = sparse_js_null(pooled, small, 1, np.random.default_rng(seed))[0]
        assert np.isclose(sparse, dense, rtol=1e-12, atol=1e-12)


def test_the_sparse_null_is_the_dense_null() -> None:
    for levels, small, rows in ((5_000, 100, 50_000), (400, 60, 3_000)):
        pooled = _pooled(levels, rows, levels)
        assert small * SPARSE_RATIO < pooled.size  # the regime the check sends here
        sparse = sparse_js_null(pooled, small, 3_000, np.random.default_rng(1))
        side = np.random.default_rng(2).multivariate_hypergeometric(
            pooled, small, size=3_000, method="count"
        )
        dense = jensen_shannon_rows(pooled - side, side)
        assert ks_2samp(sparse, dense).pvalue > 0.001
        assert abs(np.quantile(sparse, 0.99) - np.quantile(dense, 0.99)) < 0.01
