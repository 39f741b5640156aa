"""An always-valid sequential test for the difference of two means (mixture SPRT).

``ab_evaluate`` looks at a running test every hour. A fixed-sample test looked at that often
would promote a Staging version that is no better far more often than its alpha says. The
mixture sequential probability ratio test (Robbins 1970; Johari, Pekelis and Walsh, "Always
Valid Inference", 2017) keeps the chance of *ever* crossing its boundary at or under alpha, so
the results may be checked after every record.

With the difference of means ``d`` (Staging minus Production, signed so that positive means
Staging is better), its variance ``V`` and a normal mixture of scale ``tau`` over the true
difference (``tau`` is the minimum effect worth detecting),

    Lambda = sqrt(V / (V + tau**2)) * exp(tau**2 * d**2 / (2 * V * (V + tau**2)))

and the test rejects "no difference" once ``Lambda >= 1 / alpha``. Inverting it gives an
always-valid confidence interval for the difference, reported beside the decision.

``V`` is where real traffic breaks the textbook test, so it is built for it:

- **Clients, not records, are the unit.** A sticky client sends many requests to one arm and
  its outcomes are correlated (some clients are easy, some hard). Each arm's mean is a ratio
  (outcomes over records) and its variance is the cluster-robust delta-method variance over
  the arm's clusters (clients; a request when there is no client key), with the ``G / (G-1)``
  small-sample factor. Counting records instead promoted 15% of sticky A/A tests at 5%.
- **Residuals around the pooled mean.** Under "no difference" both arms share one mean; the
  residuals are taken around it (a score-test variance). The plug-in per-arm variance is far
  too small for a small arm at an extreme accuracy (Staging at 10% of traffic, 99% right:
  a run without errors claims almost no variance), which promoted 8-10% of A/A tests.
- **At least ``MIN_CLUSTERS`` clusters per arm** before any decision: a cluster-robust
  variance over a handful of clients is not to be trusted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

_VARIANCE_FLOOR = 1e-12
MIN_CLUSTERS = 20  # fewer clients in an arm: no decision (the test ends inconclusive)
METHOD = "mixture SPRT, cluster-robust variance around the pooled mean"


@dataclass(frozen=True)
class SequentialResult:
    """One look at the test."""

    difference: float  # Staging minus Production, positive = Staging better
    variance: float
    likelihood_ratio: float
    p_value: float  # 1 / likelihood ratio, capped at 1: always valid
    ci_low: float
    ci_high: float
    alpha: float
    method: str = METHOD
    production_clusters: int | None = None  # clients (or requests) behind each arm's mean
    staging_clusters: int | None = None

    @property
    def significant(self) -> bool:
        return self.likelihood_ratio >= 1.0 / self.alpha

    @property
    def enough_clusters(self) -> bool:
        """Both arms have ``MIN_CLUSTERS`` clusters (unknown counts: assumed enough)."""
        counts = (self.production_clusters, self.staging_clusters)
        return all(c is None or c >= MIN_CLUSTERS for c in counts)

    def to_dict(self) -> dict[str, float | bool | str | int | None]:
        return {**asdict(self), "significant": self.significant}

    def interval_point(self) -> dict[str, float]:
        """The difference and its always-valid interval, as a report's timeline plots them."""
        return {"value": self.difference, "low": self.ci_low, "high": self.ci_high}


def mixture_sprt(
    difference: float, variance: float, tau: float, alpha: float, **extra: int | str
) -> SequentialResult:
    """The mixture SPRT at one look, from the estimated difference and its variance."""
    variance = max(variance, _VARIANCE_FLOOR)
    tau2 = tau * tau
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2 * variance * (variance + tau2)
    )
    ratio = math.exp(min(log_ratio, 700.0))
    half_width = math.sqrt(
        variance * (variance + tau2) / tau2 * math.log((variance + tau2) / (variance * alpha**2))
    )
    return SequentialResult(
        difference,
        variance,
        ratio,
        min(1.0, 1.0 / ratio),
        difference - half_width,
        difference + half_width,
        alpha,
        **extra,  # type: ignore[arg-type]
    )


def log_likelihood_ratios(difference: np.ndarray, variance: np.ndarray, tau: float) -> np.ndarray:
    """``log Lambda`` for many looks at once (the A/A simulation checks every step)."""
    variance = np.maximum(variance, _VARIANCE_FLOOR)
    tau2 = tau * tau
    return 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2 * variance * (variance + tau2)
    )


@dataclass(frozen=True)
class ClusterSums:
    """What an arm's mean and its cluster-robust variance need: per cluster ``c`` with
    outcome total ``y_c`` over ``m_c`` records, the sums over clusters."""

    clusters: int  # G
    records: float  # sum m_c
    total: float  # sum y_c
    y2: float  # sum y_c**2
    ym: float  # sum y_c * m_c
    m2: float  # sum m_c**2
    squares: float  # sum of the records' outcomes squared

    @classmethod
    def of(cls, values: np.ndarray, clusters: np.ndarray | None = None) -> ClusterSums:
        values = np.asarray(values, dtype=float)
        if clusters is None:  # every record its own cluster: y_c = value, m_c = 1
            n, total = float(len(values)), float(values.sum())
            squares = float((values**2).sum())
            return cls(len(values), n, total, squares, total, n, squares)
        grouped = pd.Series(values).groupby(np.asarray(clusters), sort=False)
        y, m = grouped.sum().to_numpy(), grouped.size().to_numpy(dtype=float)
        return cls(
            len(y),
            float(m.sum()),
            float(y.sum()),
            float((y * y).sum()),
            float((y * m).sum()),
            float((m * m).sum()),
            float((values**2).sum()),
        )

    def residual_squares(self, center: float) -> float:
        """``sum (y_c - center * m_c)**2``: what the cluster-robust variance is made of."""
        return max(self.y2 - 2 * center * self.ym + center * center * self.m2, 0.0)


def pooled_variance(production: ClusterSums, staging: ClusterSums) -> float:
    """``V`` of the difference of means under "no difference" (see the module).

    Per arm, the larger of two estimates of the variance of its mean: the cluster-robust one
    (residuals around the pooled mean, ``G / (G-1)``), and the one the pooled sample implies
    for an arm of this shape: per-record variance ``s2`` and within-client covariance ``c``
    estimated on both arms together, ``(s2 * M + c * sum m_c (m_c - 1)) / M**2``. The second
    keeps a small arm that happens to make no error from claiming no variance (for 0/1
    outcomes and one record per client it is the score test's ``p (1 - p) / n``); the first
    holds when the arms' clients differ in ways the pooled model does not see.
    """
    arms = (production, staging)
    records = production.records + staging.records
    mean = (production.total + staging.total) / records
    per_record = max((production.squares + staging.squares) / records - mean * mean, 0.0)
    pairs = sum(a.m2 - a.records for a in arms)  # pairs of records sharing a client
    shared = (
        max((sum(a.residual_squares(mean) for a in arms) - per_record * records) / pairs, 0.0)
        if pairs > 0
        else 0.0
    )
    total = 0.0
    for arm in arms:
        if arm.clusters < 2:
            return math.inf
        robust = arm.clusters / (arm.clusters - 1) * arm.residual_squares(mean) / arm.records**2
        model = (per_record * arm.records + shared * (arm.m2 - arm.records)) / arm.records**2
        total += max(robust, model)
    return total


def two_sample(
    production: np.ndarray,
    staging: np.ndarray,
    tau: float,
    alpha: float,
    higher_is_better: bool,
    clusters: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> SequentialResult:
    """The test on per-record outcomes (1/0 correct, or an error): Staging against Production.
    ``clusters`` names each record's client (or request) per arm; None: records independent."""
    arms = ClusterSums.of(production, clusters[0]), ClusterSums.of(staging, clusters[1])
    sign = 1.0 if higher_is_better else -1.0
    difference = sign * (arms[1].total / arms[1].records - arms[0].total / arms[0].records)
    return mixture_sprt(
        difference,
        pooled_variance(*arms),
        tau,
        alpha,
        production_clusters=arms[0].clusters,
        staging_clusters=arms[1].clusters,
    )
