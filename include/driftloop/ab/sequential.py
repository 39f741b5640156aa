"""An always-valid sequential test for the difference of two means (mixture SPRT).

``ab_evaluate`` looks at a running test every hour. A fixed-sample test looked at that often
would promote a Staging version that is no better far more often than its alpha says. The
mixture sequential probability ratio test (Robbins 1970; Johari, Pekelis and Walsh, "Always
Valid Inference", 2017) keeps the chance of *ever* crossing its boundary at or under alpha, so
the results may be checked after every record.

With the difference of means ``d`` (Staging minus Production, signed so that positive means
Staging is better), its variance ``V = s_p**2 / n_p + s_s**2 / n_s`` and a normal mixture of
scale ``tau`` over the true difference (``tau`` is the minimum effect worth detecting),

    Lambda = sqrt(V / (V + tau**2)) * exp(tau**2 * d**2 / (2 * V * (V + tau**2)))

and the test rejects "no difference" once ``Lambda >= 1 / alpha``. Inverting it gives an
always-valid confidence interval for the difference, reported beside the decision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

_VARIANCE_FLOOR = 1e-12


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

    @property
    def significant(self) -> bool:
        return self.likelihood_ratio >= 1.0 / self.alpha

    def to_dict(self) -> dict[str, float | bool]:
        return {**asdict(self), "significant": self.significant}


def mixture_sprt(difference: float, variance: float, tau: float, alpha: float) -> SequentialResult:
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
    )


def log_likelihood_ratios(difference: np.ndarray, variance: np.ndarray, tau: float) -> np.ndarray:
    """``log Lambda`` for many looks at once (the A/A simulation checks every step)."""
    variance = np.maximum(variance, _VARIANCE_FLOOR)
    tau2 = tau * tau
    return 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2 * variance * (variance + tau2)
    )


def two_sample(
    production: np.ndarray, staging: np.ndarray, tau: float, alpha: float, higher_is_better: bool
) -> SequentialResult:
    """The test on per-record outcomes (1/0 correct, or an error): Staging against Production."""
    sign = 1.0 if higher_is_better else -1.0
    difference = sign * (float(np.mean(staging)) - float(np.mean(production)))
    variance = _mean_variance(production) + _mean_variance(staging)
    return mixture_sprt(difference, variance, tau, alpha)


def _mean_variance(values: np.ndarray) -> float:
    """The variance of a sample mean; for 0/1 outcomes smoothed so that a perfect run of
    successes does not claim zero variance."""
    n = len(values)
    if n < 2:
        return math.inf
    if np.isin(values, (0.0, 1.0)).all():
        p = (float(values.sum()) + 0.5) / (n + 1.0)
        return p * (1.0 - p) / n
    return float(np.var(values, ddof=1)) / n
