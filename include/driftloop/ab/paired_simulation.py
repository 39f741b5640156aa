"""Simulated shadow traffic for the paired test: both models' outcomes on every request, so
the paired test (:mod:`driftloop.ab.paired`) and today's unpaired test
(:func:`driftloop.ab.simulation.decisions_and_records`) decide on the very same requests.

Each request has a client, a route (Staging serves it when the client's point falls below the
Staging share, as :meth:`TrafficSplit.variant_for` routes a key; requests without a client
are routed at random) and a pair of outcomes drawn from the client's own law: Production right
with chance ``a_c``, the two models disagreeing on a share ``q_c`` of requests, Staging right
on ``q_c / 2 + lift / 2`` of them alone and Production on ``q_c / 2 - lift / 2``: Staging's
accuracy is ``a_c + lift``. With ``lift`` 0 both models have the same error rate on every
client (an A/A test with sticky, correlated clients).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from driftloop.ab.sequential import MIN_CLUSTERS, log_likelihood_ratios
from driftloop.ab.simulation import first_crossings, prior_client_sums


@dataclass(frozen=True)
class PairedTraffic:
    """Per test (rows) and request (columns): routed to Staging, both outcomes (1/0 right),
    and the client (None: every request its own client)."""

    to_staging: np.ndarray
    production: np.ndarray
    staging: np.ndarray
    client: np.ndarray | None = None
    point: np.ndarray | None = None  # each request's (its client's) point in [0, 1)

    def routed(self, staging_share: float) -> PairedTraffic:
        """The same requests and outcomes under another split: a request goes to Staging when
        its point falls below the share, so raising the share only moves requests to it."""
        if self.point is None:
            raise ValueError("these draws kept no routing points")
        return replace(self, to_staging=self.point < staging_share)

    @property
    def served(self) -> np.ndarray:
        """The outcome the unpaired test sees: the answer of the variant that served."""
        return np.where(self.to_staging, self.staging, self.production)


def paired_draws(
    tests: int,
    requests: int,
    staging_share: float,
    seed: int,
    accuracy: float = 0.55,
    discordance: float = 0.3,
    lift: float = 0.0,
    clients: int | None = None,
    icc: float = 0.1,
    activity_sigma: float = 1.0,
) -> PairedTraffic:
    """Shadow traffic (see the module). ``clients`` None: independent requests; else that many
    sticky clients of lognormal activity, each with its own accuracy (Beta, intra-client
    correlation ``icc``) and its own discordance (Beta around ``discordance``)."""
    rng = np.random.default_rng(seed)
    shape = (tests, requests)
    if clients is None:
        who = None
        point = rng.random(shape)
        a = np.full(shape, accuracy)
        q = np.full(shape, discordance)
    else:
        weights = rng.lognormal(0.0, activity_sigma, (tests, clients))
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        cumulative[:, -1] = 1.0
        who = np.stack(
            [
                np.searchsorted(cumulative[t], rng.random(requests), side="right")
                for t in range(tests)
            ]
        )
        strength = (1 - icc) / icc
        own_accuracy = rng.beta(accuracy * strength, (1 - accuracy) * strength, (tests, clients))
        own_discordance = discordance * rng.beta(5.0, 5.0, (tests, clients)) * 2
        point = np.take_along_axis(rng.random((tests, clients)), who, 1)
        a = np.take_along_axis(own_accuracy, who, 1)
        q = np.take_along_axis(own_discordance, who, 1)
    # a law needs q >= lift, and room for both-right and both-wrong
    q = np.clip(q, lift, None)
    a = np.clip(a, (q - lift) / 2, 1 - (q + lift) / 2)
    only_staging, only_production = (q + lift) / 2, (q - lift) / 2
    both_right = a - only_production
    u = rng.random(shape)
    staging_alone = (u >= both_right) & (u < both_right + only_staging)
    production_alone = (u >= both_right + only_staging) & (
        u < both_right + only_staging + only_production
    )
    both = u < both_right
    return PairedTraffic(
        point < staging_share,
        (both | production_alone).astype(float),
        (both | staging_alone).astype(float),
        who,
        point,
    )


def paired_decisions_and_records(
    traffic: PairedTraffic,
    alpha: float,
    tau: float,
    min_samples: int,
    look_every: int,
    higher_is_better: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per test the paired test's first decision (+1 promote, -1 reject, 0 none) looking every
    ``look_every`` requests, and the labelled requests seen then (0: none). Pairs are the
    requests Production served (Staging answered them in shadow); the variance is
    :func:`driftloop.ab.paired.paired_variance` at every look."""
    paired = ~traffic.to_staging
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (traffic.staging - traffic.production) * paired
    looks = np.arange(look_every, d.shape[1] + 1, look_every) - 1
    if traffic.client is None:
        prior_d, prior_n = np.zeros_like(d), np.zeros_like(d)
    else:
        prior_d, _ = prior_client_sums(d, traffic.client)
        prior_n, _ = prior_client_sums(paired.astype(float), traffic.client)

    def running(values: np.ndarray) -> np.ndarray:
        return np.cumsum(values, axis=1)[:, looks]

    n = running(paired.astype(float))
    total = running(d)
    squares = running(d * d)
    cluster_squares = running(2 * prior_d * d + d * d)
    groups = running((paired & (prior_n == 0)).astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        robust = groups / (groups - 1) * cluster_squares
        variance = np.where(groups >= 2, np.maximum(squares, robust) / n**2, np.inf)
        difference = total / n
        log_ratio = log_likelihood_ratios(difference, variance, tau)
    eligible = (n >= min_samples) & (groups >= MIN_CLUSTERS)
    return first_crossings(log_ratio, eligible, difference, looks, alpha)
