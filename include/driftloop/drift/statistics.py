"""The registry of drift statistics.

Each statistic is a small record: a name, a function of (reference column profile, current
non-missing values), a default threshold and the column kinds it fits. The engine loops over
the configured names, so adding PSI or KS is one function and one :func:`register` call.
A feature is flagged by a statistic when the value reaches its threshold. The current values
of a numeric column arrive finite and sorted ascending (the engine sorts them once, in place).

numpy and scipy are imported inside the functions: the configuration validates statistic names
against this registry, and DAG files load the configuration at parse time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from driftloop.drift.profile import ColumnProfile

NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclass(frozen=True)
class Measurement:
    """A statistic's value (what the threshold applies to) and supporting numbers."""

    value: float
    details: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Statistic:
    name: str
    compute: Callable[[ColumnProfile, np.ndarray], Measurement]
    default_threshold: float
    column_kinds: frozenset[str]
    description: str


STATISTICS: dict[str, Statistic] = {}


def register(statistic: Statistic) -> Statistic:
    STATISTICS[statistic.name] = statistic
    return statistic


def _scaled(distance: float, scale: float) -> float:
    """``distance / scale``; a constant reference (scale 0) makes any difference infinite."""
    if scale > 0:
        return distance / scale
    return 0.0 if distance == 0 else float("inf")


def mean_shift(column: ColumnProfile, current: np.ndarray) -> Measurement:
    """|mean(current) - mean(reference)| / std(reference)."""
    import numpy as np

    current_mean = float(np.mean(current))
    shift = abs(current_mean - column.mean)
    return Measurement(
        _scaled(shift, column.std), {"reference_mean": column.mean, "current_mean": current_mean}
    )


def wasserstein_sorted(u_sorted: np.ndarray, v_sorted: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples: scipy's algorithm, without re-sorting.

    The same computation as ``scipy.stats.wasserstein_distance`` (the integral of the absolute
    difference of the two empirical CDFs), but the reference arrives sorted from the profile.
    """
    import numpy as np

    all_values = np.concatenate((u_sorted, v_sorted))
    order = np.argsort(all_values, kind="mergesort")  # two sorted runs: merged in linear time
    from_u = order[:-1] < u_sorted.size
    all_values = all_values[order]
    del order  # a 1M-row batch: each temporary array is 8 MB, so free them early
    deltas = np.diff(all_values)
    del all_values
    # Counting along the merged order instead of scipy's searchsorted: at tied values the
    # counts differ only where the following delta is zero, so every term is the same.
    cdf_gap = np.cumsum(from_u, dtype=np.float64)
    cdf_gap /= u_sorted.size
    v_cdf = np.cumsum(~from_u, dtype=np.float64)
    v_cdf /= v_sorted.size
    cdf_gap -= v_cdf
    del v_cdf
    np.abs(cdf_gap, out=cdf_gap)
    cdf_gap *= deltas
    return float(np.sum(cdf_gap))


def wasserstein(column: ColumnProfile, current: np.ndarray) -> Measurement:
    """Wasserstein distance to the reference, divided by std(reference)."""

    distance = wasserstein_sorted(column.values, current)  # numeric values arrive sorted
    return Measurement(
        _scaled(distance, column.std),
        {"distance": distance, "error_bound": column.wasserstein_error_bound},
    )


def jensen_shannon(column: ColumnProfile, current: np.ndarray) -> Measurement:
    """Jensen-Shannon distance (base 2, so 0..1) between reference and current bin frequencies."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon as _scipy_jensenshannon

    counts = column.histogram(current, assume_sorted=True)
    distance = float(_scipy_jensenshannon(column.probabilities, counts, base=2))
    return Measurement(0.0 if np.isnan(distance) else distance)


register(
    Statistic(
        "mean_shift", mean_shift, 0.5, frozenset({NUMERIC}), "|mean(cur) - mean(ref)| / std(ref)"
    )
)
register(
    Statistic(
        "wasserstein", wasserstein, 0.3, frozenset({NUMERIC}), "Wasserstein distance / std(ref)"
    )
)
register(
    Statistic(
        "jensen_shannon",
        jensen_shannon,
        0.2,
        frozenset({NUMERIC, CATEGORICAL}),
        "Jensen-Shannon distance, base 2, on reference bins",
    )
)
