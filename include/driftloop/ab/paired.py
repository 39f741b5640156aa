"""Paired shadow evaluation (``ab.design: paired``): Staging's shadow answer against
Production's served answer on the same labelled request.

In shadow mode Staging predicts every request Production answers; once the label arrives each
record gives a *pair* of outcomes. The per-record difference ``d = Staging - Production``
(1/0 correct: +1 only Staging right, -1 only Production right, 0 when they agree) removes
everything the two models share: how hard the request was, which client sent it. Its mean is
the accuracy difference, and its variance is the *discordance* (the share of requests where
they disagree) over ``n``, instead of about ``p (1 - p) (1/n_s + 1/n_p)`` for two separate
groups. When the models mostly agree, far fewer labelled requests reach a decision, and no
user is ever served by the unproven model during the test.

The decision is the package's mixture SPRT (:func:`driftloop.ab.sequential.mixture_sprt`, the
same ``tau`` and ``alpha``) on the mean difference with

    V = max(sum d_i**2, G / (G - 1) * sum_c D_c**2) / n**2

where ``D_c`` is the sum of the differences of cluster ``c`` (a sticky client, else the
request), centred at 0 (the null). For independent 0/1 pairs, ``sum d_i**2`` is the number of
discordant pairs and the test is exactly a normal-mixture test of "each discordant pair goes
either way with chance 1/2" (the sign sum is sub-Gaussian, so Ville's inequality bounds the
chance of ever crossing by alpha, looked at after every record); the mixture's scale is
``tau`` over the observed discordance. The cluster-robust term keeps a client whose requests
lean one way from counting as many independent pairs. The interval is always valid for the
mean difference, in metric units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from driftloop.ab.sequential import MIN_CLUSTERS, SequentialResult, mixture_sprt

_NO_EVIDENCE = 1e12  # the variance of fewer than two clusters: a ratio of about 0, no decision
METHOD = "paired mixture SPRT on shadow pairs, cluster-robust variance around 0"
__all__ = ["METHOD", "MIN_CLUSTERS", "PairedTable", "paired_test", "paired_variance"]


@dataclass(frozen=True)
class PairedTable:
    """The labelled pairs by who was right (classification only)."""

    both_right: int
    only_staging: int
    only_production: int
    both_wrong: int

    @property
    def pairs(self) -> int:
        return self.both_right + self.only_staging + self.only_production + self.both_wrong

    @property
    def discordance(self) -> float:
        return (self.only_staging + self.only_production) / self.pairs if self.pairs else 0.0

    @classmethod
    def of(cls, production_right: np.ndarray, staging_right: np.ndarray) -> PairedTable:
        p = np.asarray(production_right, dtype=bool)
        s = np.asarray(staging_right, dtype=bool)
        return cls(
            int((p & s).sum()), int((s & ~p).sum()), int((p & ~s).sum()), int((~p & ~s).sum())
        )

    def to_dict(self) -> dict[str, int | float]:
        return {**asdict(self), "pairs": self.pairs, "discordance": self.discordance}


def paired_variance(differences: np.ndarray, clusters: np.ndarray | None = None) -> float:
    """``V`` of the mean paired difference under "no difference" (see the module); infinite
    with fewer than two clusters."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if clusters is None:
        sums, groups = d, n
    else:
        grouped = pd.Series(d).groupby(np.asarray(clusters), sort=False).sum().to_numpy()
        sums, groups = grouped, len(grouped)
    if groups < 2:
        return math.inf
    model = float((d * d).sum())
    robust = groups / (groups - 1) * float((sums * sums).sum())
    return max(model, robust) / (n * n)


def paired_test(
    production: np.ndarray,
    staging: np.ndarray,
    tau: float,
    alpha: float,
    higher_is_better: bool,
    clusters: np.ndarray | None = None,
) -> SequentialResult:
    """One look at the paired test: per pair Production's and Staging's outcome (1/0 right, or
    an error), and its cluster (client or request; None: pairs independent)."""
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (np.asarray(staging, dtype=float) - np.asarray(production, dtype=float))
    groups = len(d) if clusters is None else int(pd.Series(clusters).nunique())
    variance = paired_variance(d, clusters) if len(d) else math.inf
    return mixture_sprt(
        float(d.mean()) if len(d) else 0.0,
        min(variance, _NO_EVIDENCE),
        tau,
        alpha,
        method=METHOD,
        production_clusters=groups,
        staging_clusters=groups,
    )
