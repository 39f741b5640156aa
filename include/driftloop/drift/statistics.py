"""The registry of drift statistics.

Each statistic is a small record: a name, a function of (reference column profile, current
non-missing values), its effect-size floor, a fixed threshold (for configs that still set
``drift.thresholds``), the column kinds it fits and how to draw it under no drift. The engine
loops over the configured names, so adding PSI or KS is one function and one :func:`register`
call; one shipped with driftloop is also named in ``driftloop.config.STATISTIC_NAMES`` (configs
are validated without importing this module; a test keeps the two equal). Without a null
sampler of its own, a statistic is calibrated by the generic (slower) resampling in
:func:`resampled_null`. A feature is flagged by a statistic when the value is beyond its
calibrated threshold for the batch's size and at least its floor (see
``driftloop.drift.calibration``). The current values of a numeric column arrive finite and
sorted ascending (the engine sorts them once, in place). A categorical column arrives as its
counts per reference level, then one count per label the reference lacks: frequencies are all
a categorical statistic compares, and a label per row would hold a million Python references
for a 1M-row batch. A statistic with a ``permutation`` (row-wise distance) is tested on
categorical columns by permutation at check time (``driftloop.drift.categorical``): the
reference alone cannot show the levels it misses.

numpy is imported inside the functions, so the registry's names and defaults can be read without
it. scipy is not imported at all: its formulas are reproduced in numpy (and tested against
scipy), which keeps the check's memory low.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from driftloop.config import KNOWN_STATISTICS
from driftloop.drift import calibration
from driftloop.drift.calibration import NullDistribution
from driftloop.drift.column import CATEGORICAL, NUMERIC, ColumnProfile

if TYPE_CHECKING:
    from driftloop.config import DriftSettings
    from driftloop.drift.sketch import NumericSummary


@dataclass(frozen=True)
class Measurement:
    """A statistic's value (what the threshold applies to) and supporting numbers."""

    value: float
    details: dict[str, float] = field(default_factory=dict)


Sketched = Callable[["ColumnProfile", "NumericSummary"], tuple[Measurement, float]]
"""(reference column, a numeric batch's summary) -> the measurement and its error bound (in
the statistic's units) on a batch too large to hold (see driftloop.drift.sketch)."""

NullSampler = Callable[["ColumnProfile", int, "np.random.Generator"], "NullDistribution"]
"""(reference column, number of draws, generator) -> the statistic's scaled null draws."""


@dataclass(frozen=True)
class Statistic:
    name: str
    compute: Callable[[ColumnProfile, np.ndarray], Measurement]
    default_threshold: float
    column_kinds: frozenset[str]
    description: str
    default_floor: float = 0.0
    null: NullSampler | None = None
    sketched: Sketched | None = None  # numeric columns of sketched batches; None: cannot
    # categorical columns: the row-wise distance of (reference, batch) count arrays, tested by
    # permutation at check time (driftloop.drift.categorical); None: by the stored null
    permutation: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


STATISTICS: dict[str, Statistic] = {}


def register(statistic: Statistic) -> Statistic:
    """Add a statistic, and let configs name it. One of driftloop's own is also listed in
    ``driftloop.config.STATISTIC_NAMES``, so a config is validated without this module."""
    STATISTICS[statistic.name] = statistic
    KNOWN_STATISTICS.add(statistic.name)
    return statistic


def fixed_threshold(settings: DriftSettings, name: str) -> float:
    """The fixed threshold of a statistic (fixed mode): the config's, else the default."""
    return settings.thresholds.get(name, STATISTICS[name].default_threshold)


def effect_floor(settings: DriftSettings, name: str) -> float:
    """The effect size a statistic must reach to flag (calibrated mode): the config's, else
    the default."""
    return settings.effect_floor.get(name, STATISTICS[name].default_floor)


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


def mean_shift_sketched(
    column: ColumnProfile, summary: NumericSummary
) -> tuple[Measurement, float]:
    """The mean shift from a streamed mean: exact up to rounding, so its bound is 0."""
    shift = abs(summary.mean - column.mean)
    details = {"reference_mean": column.mean, "current_mean": summary.mean}
    return Measurement(_scaled(shift, column.std), details), 0.0


WASSERSTEIN_BLOCK = 65_536
"""Most values of each sample in one block of :func:`wasserstein_sorted` (arrays of ~1 MB)."""


def wasserstein_sorted(
    u_sorted: np.ndarray, v_sorted: np.ndarray, block: int = WASSERSTEIN_BLOCK
) -> float:
    """First Wasserstein distance of two sorted samples: scipy's sum, one block at a time.

    ``scipy.stats.wasserstein_distance`` merges both samples and sums, over the merged values,
    ``|U(x) - V(x)| * (next x - x)`` (U, V: the empirical CDFs). The same terms are summed here,
    over blocks of the merged order with at most ``block`` values of each sample, so no array as
    long as both samples together is built: at 1M rows each such array is 8 MB, and those arrays
    were most of the check's peak memory. The samples arrive sorted (the reference from the
    profile, the batch from the engine), so nothing is re-sorted.
    """
    import numpy as np

    n, m = u_sorted.size, v_sorted.size
    # Where blocks start in the merged order (u before v at equal values, like a stable sort):
    # at every block-th value of either sample, with the other sample's values merged before it.
    u_starts, v_starts = np.arange(block, n, block), np.arange(block, m, block)
    u_cuts = np.concatenate(
        ([0], u_starts, np.searchsorted(u_sorted, v_sorted[v_starts], side="right"), [n])
    )
    v_cuts = np.concatenate(
        ([0], np.searchsorted(v_sorted, u_sorted[u_starts], side="left"), v_starts, [m])
    )
    order = np.argsort(u_cuts + v_cuts, kind="stable")  # cuts of one merge: ordered by length
    bounds = zip(u_cuts[order].tolist(), v_cuts[order].tolist(), strict=True)
    total = 0.0
    for (u_lo, v_lo), (u_hi, v_hi) in itertools.pairwise(bounds):
        if u_lo < u_hi or v_lo < v_hi:
            total += _wasserstein_block(u_sorted, v_sorted, u_lo, u_hi, v_lo, v_hi)
    return total


def _wasserstein_block(
    u_sorted: np.ndarray, v_sorted: np.ndarray, u_lo: int, u_hi: int, v_lo: int, v_hi: int
) -> float:
    """The terms of :func:`wasserstein_sorted` from one block of each sample (``[lo:hi]``).

    The block's last gap reaches the first value of the next block. Counting along the merged
    order instead of scipy's searchsorted: at tied values the counts differ only where the
    following gap is zero, so every term is the same.
    """
    import numpy as np

    u_part = u_sorted[u_lo:u_hi]
    merged = np.concatenate((u_part, v_sorted[v_lo:v_hi]))
    order = np.argsort(merged, kind="mergesort")  # two sorted runs: merged in linear time
    from_u = order < u_part.size
    values = merged[order]
    del merged, order
    if u_hi < u_sorted.size or v_hi < v_sorted.size:
        following = min(
            u_sorted[u_hi] if u_hi < u_sorted.size else np.inf,
            v_sorted[v_hi] if v_hi < v_sorted.size else np.inf,
        )
        deltas = np.diff(values, append=following)
    else:  # the last block: its last value has no gap after it
        deltas = np.diff(values)
        from_u = from_u[:-1]
    cdf_gap = np.cumsum(from_u, dtype=np.float64)
    cdf_gap += u_lo
    cdf_gap /= u_sorted.size
    v_cdf = np.cumsum(~from_u, dtype=np.float64)
    v_cdf += v_lo
    v_cdf /= v_sorted.size
    cdf_gap -= v_cdf
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


def wasserstein_sketched(
    column: ColumnProfile, summary: NumericSummary
) -> tuple[Measurement, float]:
    """The Wasserstein distance of the reference to the batch's fine histogram (each bin's mass
    at its mean), with the histogram's proven bound (driftloop.drift.sketch). scipy's weighted
    form is used here: a sketched batch is large, so its import is a small share of memory."""
    from scipy.stats import wasserstein_distance

    means, counts, bound = summary.support()
    distance = float(wasserstein_distance(column.values, means, v_weights=counts))
    details = {
        "distance": distance,
        "error_bound": column.wasserstein_error_bound,
        "batch_error_bound": bound,
    }
    return Measurement(_scaled(distance, column.std), details), _scaled(bound, column.std)


def jensen_shannon(column: ColumnProfile, current: np.ndarray) -> Measurement:
    """Jensen-Shannon distance (base 2, so 0..1) between reference and current bin frequencies."""
    if column.kind == CATEGORICAL:
        # counts per reference level, then per unseen label: the unseen ones folded into the
        # profile's one unseen bin (the distance is the same folded or not: the reference has
        # no mass on any of them)
        import numpy as np

        levels = len(column.levels)
        counts = np.append(current[:levels], current[levels:].sum())
    else:
        counts = column.histogram(current, assume_sorted=True)
    distance = jensen_shannon_distance(column.probabilities, counts)
    return Measurement(0.0 if math.isnan(distance) else distance)  # NaN: identical histograms


def jensen_shannon_sketched(
    column: ColumnProfile, summary: NumericSummary
) -> tuple[Measurement, float]:
    """Jensen-Shannon from the fine histogram's counts, summed into the reference bins: exact."""
    distance = jensen_shannon_distance(column.probabilities, summary.histogram(column.bin_edges))
    return Measurement(0.0 if math.isnan(distance) else distance), 0.0


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q, base=2)``: the same operations, in numpy.

    Importing ``scipy.spatial`` (or ``scipy.special`` for ``rel_entr``) would add 11 to 16 MiB
    to the check's peak memory, for arrays of a dozen bins. Like scipy, it returns NaN where
    rounding makes the divergence of identical histograms slightly negative.
    """
    return float(jensen_shannon_rows(p[None, :], q[None, :])[0])


def jensen_shannon_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`jensen_shannon_distance` of each row of two (rows x bins) arrays of counts."""
    import numpy as np

    p = p / np.sum(p, axis=1, keepdims=True)
    q = q / np.sum(q, axis=1, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(_rel_entr(p, m), axis=1) + np.sum(_rel_entr(q, m), axis=1)
    js /= np.log(2.0)
    with np.errstate(invalid="ignore"):
        return np.sqrt(js / 2.0)


def _rel_entr(x: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """``scipy.special.rel_entr(x, mixture)`` where ``mixture`` is positive wherever ``x`` is
    (a Jensen-Shannon mixture): ``x log(x / mixture)``, 0 where ``x`` is 0, NaN where ``x`` is
    (a NaN mixture comes from a NaN side, whose own terms carry it into the sum). One pass
    without masks: the permutation nulls call it on (draws x levels) arrays, where the masked
    version cost a third of a wide check."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return x * np.log(np.where(x > 0, x / mixture, 1.0))


def _value_null(name: str) -> NullSampler:
    """Resampled small batches, closed by the statistic's limit (see drift.calibration)."""

    def sample(column: ColumnProfile, draws: int, rng: np.random.Generator) -> NullDistribution:
        if name == "mean_shift":
            limit = calibration.mean_shift_limit(draws)
        else:
            limit = calibration.wasserstein_limit(column.values, column.std, draws, rng)
        return calibration.value_null(
            name, column.values, column.std, column.count, draws, rng, limit
        )

    return sample


def _binned_null(column: ColumnProfile, draws: int, rng: np.random.Generator) -> NullDistribution:
    return calibration.binned_null(
        jensen_shannon_rows, column.probabilities, column.count, draws, rng
    )


def resampled_null(
    statistic: Statistic, column: ColumnProfile, draws: int, rng: np.random.Generator
) -> NullDistribution:
    """Any statistic's null, by computing it on resampled pairs (one call per draw: slow)."""
    return generic_null(statistic.compute, column, draws, rng)


def generic_null(
    compute: Callable[..., object],
    column: ColumnProfile,
    draws: int,
    rng: np.random.Generator,
) -> NullDistribution:
    """The null of any registered statistic, computing it once per resampled pair.

    For statistics without a vectorised sampler of their own: correct, but one Python call per
    draw, so a new statistic should add one when it proves useful. Beyond the largest rung the
    last one is used (no limit is known in general).
    """
    from dataclasses import replace

    sizes = calibration.SMALL_SIZES
    rows = []
    for n in sizes:
        m = min(column.count, max(1_000, 10 * n))
        values = np.empty(draws)
        for index in range(draws):
            if column.values.size:  # numeric: sorted values, and the histogram of the pseudo one
                pseudo = column.values[calibration.sorted_indices(column.values.size, rng, 1, m)[0]]
                counts = np.diff(np.searchsorted(pseudo, column.bin_edges), prepend=0, append=m)
                reference = replace(
                    column,
                    values=pseudo,
                    mean=float(pseudo.mean()),
                    std=float(pseudo.std(ddof=1)),
                    probabilities=counts / m,
                    count=m,
                )
                batch = column.values[calibration.sorted_indices(column.values.size, rng, 1, n)[0]]
            else:  # categorical: counts per level
                reference = replace(
                    column, probabilities=rng.multinomial(m, column.probabilities) / m, count=m
                )
                batch = rng.multinomial(n, column.probabilities).astype(float)
            values[index] = compute(reference, batch).value / calibration.scale(n, m)  # type: ignore[attr-defined]
        rows.append(np.sort(values))
    return NullDistribution(tuple(sizes), np.vstack(rows))


register(
    Statistic(
        "mean_shift",
        mean_shift,
        0.5,
        frozenset({NUMERIC}),
        "|mean(cur) - mean(ref)| / std(ref)",
        default_floor=0.1,
        null=_value_null("mean_shift"),
        sketched=mean_shift_sketched,
    )
)
register(
    Statistic(
        "wasserstein",
        wasserstein,
        0.3,
        frozenset({NUMERIC}),
        "Wasserstein distance / std(ref)",
        default_floor=0.075,
        null=_value_null("wasserstein"),
        sketched=wasserstein_sketched,
    )
)
register(
    Statistic(
        "jensen_shannon",
        jensen_shannon,
        0.2,
        frozenset({NUMERIC, CATEGORICAL}),
        "Jensen-Shannon distance, base 2, on reference bins",
        default_floor=0.05,
        null=_binned_null,
        sketched=jensen_shannon_sketched,
        permutation=jensen_shannon_rows,
    )
)
