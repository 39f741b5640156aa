"""The gate's statistics: is the challenger not worse than Production by more than the margin?

Both models are scored row by row on the same holdout and the decision rests on the paired
differences, so a 15-row tie or a one-point gap no longer decides anything by itself. Two
one-sided tests at ``training.gate_alpha`` around the margin ``training.tolerance`` give three
outcomes: non-inferiority shown (``staging``), inferiority beyond the margin shown
(``rejected``), or neither (``insufficient_evidence``: too few rows, or an interval that still
holds the margin). Each outcome's error rate is at most alpha (``tests/gate/test_statistics.py`` and
``benchmarks/gate_simulation.py`` measure it).

Accuracy uses Tango's score interval for the difference of paired proportions (Tango 1998,
Stat Med 17:891), which keeps its coverage when the models disagree on few rows and does not
collapse to a point on a tie. MAE and RMSE bound the ratio of the mean per-row losses, because
their margin is a fraction of Production's error, which is itself estimated on the same rows.
They use Fieller's interval for that ratio, but with a quantile from a bound that holds for any
law of the losses with a finite variance instead of Student's t (:func:`ratio_quantile`). With a
heavy-tailed challenger (Student-t errors, or a few rows far off) the mean loss and its standard
error are small together in the holdouts that miss the tail, and no sample can show the tail it
missed: over four looks on 80 rows Fieller's t interval staged 10-29% of equal heavy-tailed
challengers, the wider of it and a bootstrap-t 7.75-19.25%; today's bound 0-2% (400 runs per
cell, ``docs/benchmarks.md``, issue 27 round 2). Below
``SMALL_HOLDOUT`` rows the quantile is Cantelli's one-sided Chebyshev bound, because there a few
far-off rows make the law of the mean a mixture (0, 1, 2 ... of them drawn) that need not be
unimodal; from ``SMALL_HOLDOUT`` rows it is the unimodal (Vysochanskij-Petunin) bound, about a
third narrower. The price is power on small holdouts: a challenger with 15% lower error needs
about 200 rows to be staged at the first look in most holdouts, not 80 (1,000 rows: unchanged).

A version may be judged up to ``training.gate_retries + 1`` times on a growing holdout
(``gatekeeper.regate_pending``). Each attempt spends part of ``gate_alpha`` (:func:`look_alpha`):
half at the first look, the other half shared by the re-gates, so the chance of *ever* staging
an equal challenger (or of ever rejecting one on the margin) over every look is at most
``gate_alpha`` by the union bound, whatever the correlation of the looks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from driftloop.config import Settings, TrainingSettings
from driftloop.task import metric as metric_named
from driftloop.task import task_of
from driftloop.vocabulary import GateOutcome

TANGO = "tango score interval, paired proportions"
FIELLER = "fieller t interval, ratio of paired mean losses"
CHEBYSHEV = "fieller interval, distribution-free quantile, ratio of paired mean losses"
SMALL_HOLDOUT = 150  # fewer rows: Cantelli's quantile; more: the unimodal one (see the module)


@dataclass(frozen=True)
class Interval:
    """The challenger's advantage and its two one-sided ``1 - alpha`` bounds."""

    difference: float
    low: float
    high: float


@dataclass(frozen=True)
class GateResult:
    """One gate attempt: the decision, why, and every number behind it.

    ``difference`` is the challenger's advantage in the margin's units: accuracy points gained,
    or the fraction of Production's error saved (``1 - error_challenger / error_production``).
    Positive is better; the challenger passes when ``low > -margin``. A bound that does not
    exist (Production's error not clearly above zero, or no rows) is None.
    """

    outcome: GateOutcome
    reason: str
    metric: str
    test: str
    rows: int
    challenger_score: float | None
    production_score: float | None
    difference: float | None
    low: float | None
    high: float | None
    margin: float
    alpha: float
    attempt: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": str(self.outcome)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GateResult:
        return cls(**{**values, "outcome": GateOutcome(values["outcome"])})

    def stored_columns(self) -> dict[str, Any]:
        """The numbers as ``retrain_runs`` keeps them (the ``gate_*`` columns)."""
        names = ("test", "rows", "difference", "low", "high", "margin", "alpha", "attempt")
        return {f"gate_{name}": getattr(self, name) for name in names}

    def summary(self) -> str:
        """One line for people: the difference, its interval, the margin and the rows."""
        unit = "points" if self.metric == "accuracy" else f"of Production's {self.metric}"
        return (
            f"{self.metric} {_number(self.challenger_score)} "
            f"vs Production {_number(self.production_score)}: "
            f"advantage {_number(self.difference, '+')} {unit}, "
            f"interval [{_number(self.low, '+')}, {_number(self.high, '+')}] "
            f"at alpha {self.alpha:g} per side, margin {self.margin:g}, {self.rows} rows, "
            f"{self.test}, attempt {self.attempt}"
        )


def _number(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:{sign}.4f}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --- per-row scores --------------------------------------------------------------------------


def gate_metric(settings: Settings) -> str:
    """The task's gate metric: accuracy; for a regression RMSE when training optimizes a
    squared error, else MAE."""
    return task_of(settings).gate_metric(settings.training.optimize).name


def per_row(pipeline: Any, frame: pd.DataFrame, settings: Settings, metric: str) -> np.ndarray:
    """Per holdout row: 1.0 if right else 0.0 (accuracy, labels compared as the A/B test
    compares them), |error| (MAE) or error² (RMSE)."""
    predicted = pipeline.predict(frame[settings.feature_columns])
    return metric_named(metric).outcomes(frame[settings.data.target], predicted)


# --- intervals -------------------------------------------------------------------------------


def tango_interval(
    challenger_right: np.ndarray, production_right: np.ndarray, alpha: float
) -> Interval:
    """Tango's score bounds for accuracy(challenger) - accuracy(Production), each one-sided at
    ``alpha``. Only the discordant rows move it: ``b`` only the challenger got right, ``c`` only
    Production did."""
    challenger_right = np.asarray(challenger_right, dtype=bool)
    production_right = np.asarray(production_right, dtype=bool)
    n = len(challenger_right)
    b = int(np.sum(challenger_right & ~production_right))
    c = int(np.sum(~challenger_right & production_right))
    z = float(stats.norm.ppf(1 - alpha))
    estimate = (b - c) / n
    tiny = 1e-10

    def score(delta: float) -> float:
        return tango_statistic(b, c, n, delta)

    low = (
        -1.0
        if estimate <= -1 + tiny
        else optimize.brentq(lambda d: score(d) - z, -1 + tiny, estimate)
    )
    high = (
        1.0 if estimate >= 1 - tiny else optimize.brentq(lambda d: score(d) + z, estimate, 1 - tiny)
    )
    return Interval(estimate, float(low), float(high))


def tango_statistic(b: int, c: int, n: int, delta: float) -> float:
    """Tango's score statistic for H0: difference = ``delta``, with the restricted maximum
    likelihood estimate of the probability that only Production is right."""
    a_ = 2 * n
    b_ = -b - c + (2 * n - b + c) * delta
    c_ = -c * delta * (1 - delta)
    p_only_production = (math.sqrt(max(b_ * b_ - 4 * a_ * c_, 0.0)) - b_) / (2 * a_)
    # Near the ends of [-1, 1] the stationary point can leave the feasible cell probabilities;
    # the likelihood is concave there, so the restricted estimate is the nearest feasible one.
    p_only_production = min(max(p_only_production, max(0.0, -delta)), (1 - delta) / 2)
    numerator = b - c - n * delta
    variance = n * (2 * p_only_production + delta * (1 - delta))
    if variance <= 0:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def loss_ratio_interval(
    challenger_loss: np.ndarray,
    production_loss: np.ndarray,
    alpha: float,
    quantile: float | None = None,
) -> tuple[float, float, float]:
    """Fieller's bounds for ``mean(challenger_loss) / mean(production_loss)``, each one-sided
    at ``alpha``: the ratios ``r`` whose ``mean(c - r p)`` is within ``quantile`` standard errors
    of zero (``quantile`` None: Student's t with n - 1 degrees of freedom). Unbounded (inf) when
    Production's mean loss is not clearly above zero."""
    challenger_loss = np.asarray(challenger_loss, dtype=float)
    production_loss = np.asarray(production_loss, dtype=float)
    n = len(challenger_loss)
    a_mean, b_mean = float(production_loss.mean()), float(challenger_loss.mean())
    ratio = b_mean / a_mean if a_mean > 0 else math.inf
    if n < 2:
        return ratio, -math.inf, math.inf
    covariance = np.cov(np.vstack([production_loss, challenger_loss]), ddof=1)
    s_aa, s_bb, s_ab = float(covariance[0, 0]), float(covariance[1, 1]), float(covariance[0, 1])
    if quantile is None:
        quantile = float(stats.t.ppf(1 - alpha, n - 1))
    q = quantile**2 / n
    quadratic = a_mean**2 - q * s_aa
    if quadratic <= 0:
        return ratio, -math.inf, math.inf
    half = b_mean * a_mean - q * s_ab
    discriminant = max(half**2 - quadratic * (b_mean**2 - q * s_bb), 0.0)
    root = math.sqrt(discriminant)
    return ratio, (half - root) / quadratic, (half + root) / quadratic


def ratio_quantile(alpha: float, rows: int) -> float:
    """How many standard errors a one-sided ``alpha`` bound lies from the estimate, whatever
    the law of the losses (with a finite variance): Cantelli's ``P(X - mu >= k sd) <= 1 / (1 +
    k^2)`` below ``SMALL_HOLDOUT`` rows; from there the bound for a unimodal law, ``4 / (9 (1 +
    k^2))`` where ``k^2 >= 5/3`` and ``(3 - k^2) / (3 (1 + k^2))`` below. Never narrower than
    the normal quantile."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if rows < SMALL_HOLDOUT:
        bound = math.sqrt((1 - alpha) / alpha)
    elif alpha <= 1 / 6:  # 4 / (9 (1 + 5/3)): where the two branches of the unimodal bound meet
        bound = math.sqrt(4 / (9 * alpha) - 1)
    else:
        bound = math.sqrt((3 - 3 * alpha) / (1 + 3 * alpha))
    return max(bound, float(stats.norm.ppf(1 - alpha)))


def error_interval(
    challenger_loss: np.ndarray, production_loss: np.ndarray, metric: str, alpha: float
) -> Interval:
    """The fraction of Production's MAE or RMSE the challenger saves, with its bounds."""
    quantile = ratio_quantile(alpha, len(challenger_loss))
    ratio, low, high = loss_ratio_interval(challenger_loss, production_loss, alpha, quantile)
    if metric == "rmse":  # the losses are squared errors: the RMSE ratio is the square root
        ratio, low, high = (math.sqrt(max(v, 0.0)) for v in (ratio, low, high))
    return Interval(1 - ratio, 1 - high, 1 - low)


# --- the decision ----------------------------------------------------------------------------

INTERVALS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, float], Interval]]] = {
    "accuracy": (TANGO, tango_interval),
    "mae": (CHEBYSHEV, lambda c, p, alpha: error_interval(c, p, "mae", alpha)),
    "rmse": (CHEBYSHEV, lambda c, p, alpha: error_interval(c, p, "rmse", alpha)),
}


def look_alpha(training: TrainingSettings, attempt: int) -> float:
    """The alpha attempt ``attempt`` may spend per side: ``gate_alpha / 2`` at the first look
    and ``gate_alpha / (2 * gate_retries)`` at each re-gate (all of it when there are none),
    so the looks together spend at most ``gate_alpha`` (see the module)."""
    if attempt < 1:
        raise ValueError(f"a gate attempt is numbered from 1, got {attempt}")
    if training.gate_retries == 0:
        return training.gate_alpha
    if attempt == 1:
        return training.gate_alpha / 2
    return training.gate_alpha / (2 * training.gate_retries)


def judge(
    challenger_rows: np.ndarray,
    production_rows: np.ndarray,
    metric: str,
    training: TrainingSettings,
    attempt: int = 1,
) -> GateResult:
    """Decide on paired per-row values (see :func:`per_row`) of the same holdout rows."""
    if len(challenger_rows) != len(production_rows):
        raise ValueError("challenger and Production must be scored on the same rows")
    test, interval_of = INTERVALS[metric]
    rows, margin = len(challenger_rows), training.tolerance
    alpha = look_alpha(training, attempt)
    interval = (
        interval_of(challenger_rows, production_rows, alpha)
        if rows
        else Interval(math.nan, -math.inf, math.inf)
    )
    if rows < training.min_holdout:
        outcome = GateOutcome.INSUFFICIENT_EVIDENCE
        reason = (
            f"the gate holdout has {rows} rows, "
            f"fewer than training.min_holdout ({training.min_holdout})"
        )
    elif interval.low > -margin:
        outcome = GateOutcome.STAGING
        reason = (
            f"not worse than Production by the margin {margin:g}: "
            f"the lower bound {interval.low:+.4f} is above {-margin:+g}"
        )
    elif interval.high < -margin:
        outcome = GateOutcome.REJECTED
        reason = (
            f"worse than Production beyond the margin {margin:g}: "
            f"the upper bound {interval.high:+.4f} is below {-margin:+g}"
        )
    else:
        outcome = GateOutcome.INSUFFICIENT_EVIDENCE
        reason = (
            f"the interval [{interval.low:+.4f}, {interval.high:+.4f}] "
            f"holds the margin {-margin:+g}: "
            f"too wide to decide on {rows} rows"
        )
    return GateResult(
        outcome=outcome,
        reason=reason,
        metric=metric,
        test=test,
        rows=rows,
        challenger_score=_finite(metric_named(metric).aggregate(challenger_rows)),
        production_score=_finite(metric_named(metric).aggregate(production_rows)),
        difference=_finite(interval.difference),
        low=_finite(interval.low),
        high=_finite(interval.high),
        margin=margin,
        alpha=alpha,
        attempt=attempt,
    )
