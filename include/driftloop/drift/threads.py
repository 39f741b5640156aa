"""One BLAS thread for the drift computations.

Why: a check makes many small BLAS calls (a permutation null's sum over 1,000 x 1,000 splits
per heavy-tailed column, the multivariate projection). OpenBLAS splits each one across every
core and its idle threads then spin between calls, so on 2 cores a check burned twice its CPU
for the same wall time (100 features of 1,000 rows, every detector on: 2.5 s of CPU for a
1.3 s check; 1.25 s with one thread), and two checks side by side (two Airflow tasks, a
monitor beside gunicorn) took each other's cores. Training and scoring keep their threads:
the limit holds only while a decorated function runs (``benchmarks/drift_wide.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _controller() -> ThreadpoolController:
    """The thread pools loaded in this process, found on first use: numpy's and scipy's
    OpenBLAS are both loaded by then (the drift modules import them)."""
    return ThreadpoolController()


def one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with BLAS limited to one thread, the previous limits restored after."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with _controller().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
