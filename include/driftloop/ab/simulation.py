"""How often the sequential test promotes a Staging version that is no better (A/A tests).

Every simulated test splits traffic like the server does (``staging_share``), gives both
variants the same true outcome law, and looks at the results after every ``look_every``
records with feedback, from ``min_samples`` per variant (and ``MIN_CLUSTERS`` clients) on, the
way ``ab_evaluate`` may look at them. A false promotion is a test that ever crosses the
boundary on Staging's side. Traffic comes two ways:

- random routing (:func:`aa_draws`): every record its own request, independent;
- sticky clients (:func:`sticky_draws`): ``clients`` clients of uneven activity (lognormal
  weights), each with its own accuracy (Beta, intra-client correlation ``icc``) or error
  scale, routed by the client's point in [0, 1) as :meth:`TrafficSplit.variant_for` routes a
  key (a key's BLAKE2b point is uniform; drawing the point is the same law, and fast).

The decisions are computed for every look at once, vectorized, with the variance
:mod:`driftloop.ab.sequential` uses (``tests/ab/test_sequential.py`` checks both give the same
decision, test by test). Run

    python -m driftloop.ab.simulation --tests 1000

to print the rate.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from driftloop.ab.sequential import MIN_CLUSTERS, log_likelihood_ratios

POOLED, PLUG_IN = "pooled", "plug-in"  # today's variance, and the one before (for power)


@dataclass(frozen=True)
class AAResult:
    tests: int
    false_promotions: int
    false_rejections: int
    looks_per_test: int
    alpha: float

    @property
    def false_promotion_rate(self) -> float:
        return self.false_promotions / self.tests


@dataclass(frozen=True)
class Traffic:
    """Per test (rows) and record (columns): routed to Staging, the outcome (1/0 right, or an
    absolute error), and the client (None: every record its own request)."""

    to_staging: np.ndarray
    outcome: np.ndarray
    client: np.ndarray | None = None


def aa_draws(
    tests: int, records: int, accuracy: float, staging_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per test and record: routed to Staging, and answered right (the same chance for both)."""
    rng = np.random.default_rng(seed)
    return rng.random((tests, records)) < staging_share, rng.random((tests, records)) < accuracy


def sticky_draws(
    tests: int,
    records: int,
    staging_share: float,
    clients: int,
    seed: int,
    accuracy: float | None = 0.55,
    icc: float = 0.1,
    activity_sigma: float = 1.0,
    lift: float = 0.0,
) -> Traffic:
    """Sticky A/A (or A/B with ``lift`` added to Staging's accuracy) traffic. ``accuracy``
    None draws absolute errors instead: ``|N(0, s_c)|`` with a lognormal client scale whose
    spread gives about ``icc`` correlation between one client's errors."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, activity_sigma, (tests, clients))
    weights /= weights.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(weights, axis=1)
    cumulative[:, -1] = 1.0
    who = np.stack(
        [np.searchsorted(cumulative[t], rng.random(records), side="right") for t in range(tests)]
    )
    client_staging = rng.random((tests, clients)) < staging_share
    to_staging = np.take_along_axis(client_staging, who, axis=1)
    if accuracy is not None:
        strength = (1 - icc) / icc
        rate = rng.beta(accuracy * strength, (1 - accuracy) * strength, (tests, clients))
        chance = np.take_along_axis(rate, who, axis=1) + lift * to_staging
        outcome = (rng.random((tests, records)) < chance).astype(float)
    else:
        scale = np.exp(rng.normal(0.0, np.sqrt(icc * 2.5), (tests, clients)))
        outcome = np.abs(rng.standard_normal((tests, records)) * np.take_along_axis(scale, who, 1))
    return Traffic(to_staging, outcome, who)


def prior_client_sums(outcome: np.ndarray, client: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per record, its client's outcome total and record count *before* it (same test)."""
    tests, records = outcome.shape
    key = (np.arange(tests)[:, None] * (int(client.max()) + 1) + client).ravel()
    order = np.argsort(key, kind="stable")  # by client, arrival order kept within a client
    sorted_key, sorted_y = key[order], outcome.ravel()[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group = np.cumsum(starts) - 1
    running_y = np.cumsum(sorted_y)
    base_y = (running_y - sorted_y)[starts][group]
    position = np.arange(len(sorted_key))
    prior_y, prior_m = np.empty_like(sorted_y), np.empty_like(sorted_y)
    prior_y[order] = running_y - sorted_y - base_y
    prior_m[order] = position - np.flatnonzero(starts)[group]
    return prior_y.reshape(tests, records), prior_m.reshape(tests, records)


def first_decisions(
    to_staging: np.ndarray,
    correct: np.ndarray,
    alpha: float,
    tau: float,
    min_samples: int,
    look_every: int,
    client: np.ndarray | None = None,
    variance: str = POOLED,
    higher_is_better: bool = True,
) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Per test, the first crossing at a look: +1 promotes, -1 rejects, 0 never decides.
    (:func:`decisions_and_records` also gives the records seen at that look.)"""
    return decisions_and_records(
        to_staging, correct, alpha, tau, min_samples, look_every, client, variance, higher_is_better
    )[0]


def decisions_and_records(
    to_staging: np.ndarray,
    outcome: np.ndarray,
    alpha: float,
    tau: float,
    min_samples: int,
    look_every: int,
    client: np.ndarray | None = None,
    variance: str = POOLED,
    higher_is_better: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The first decision per test and the records seen when it was taken (0: none)."""
    outcome = np.asarray(outcome, dtype=float)
    looks = np.arange(look_every, to_staging.shape[1] + 1, look_every) - 1
    if client is None:  # every record its own cluster
        prior_y, prior_m = np.zeros_like(outcome), np.zeros_like(outcome)
    else:
        prior_y, prior_m = prior_client_sums(outcome, client)
    increments = {  # what each record adds to its arm's cluster sums (ClusterSums)
        "records": np.ones_like(outcome),
        "total": outcome,
        "y2": 2 * prior_y * outcome + outcome**2,
        "ym": prior_y + outcome * prior_m + outcome,
        "m2": 2 * prior_m + 1,
        "clusters": (prior_m == 0).astype(float),
        "squares": outcome**2,
    }

    def arm(mask: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.cumsum(v * mask, axis=1)[:, looks] for k, v in increments.items()}

    staging, production = arm(to_staging), arm(~to_staging)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_s = staging["total"] / staging["records"]
        mean_p = production["total"] / production["records"]
        if variance == PLUG_IN:  # the test before issue 27, for the power comparison
            v = _plug_in(staging, mean_s) + _plug_in(production, mean_p)
        else:
            v = _pooled_variance(staging, production)
        sign = 1.0 if higher_is_better else -1.0
        difference = sign * (mean_s - mean_p)
        log_ratio = log_likelihood_ratios(difference, v, tau)
    eligible = (staging["records"] >= min_samples) & (production["records"] >= min_samples)
    if client is not None:
        eligible &= (staging["clusters"] >= MIN_CLUSTERS) & (production["clusters"] >= MIN_CLUSTERS)
    return first_crossings(log_ratio, eligible, difference, looks, alpha)


def first_crossings(
    log_ratio: np.ndarray,
    eligible: np.ndarray,
    difference: np.ndarray,
    looks: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per test (row), the first look whose likelihood ratio crosses ``1 / alpha`` where a
    decision is allowed: its direction (+1 Staging better, -1 worse, 0 never) and the records
    seen by then (0 when none crossed)."""
    crossed = eligible & (log_ratio >= np.log(1 / alpha))
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    decisions = np.zeros(len(first), dtype=int)
    seen = np.zeros(len(first), dtype=int)
    rows = np.flatnonzero(first >= 0)
    decisions[rows] = np.where(difference[rows, first[rows]] > 0, 1, -1)
    seen[rows] = looks[first[rows]] + 1
    return decisions, seen


def _pooled_variance(
    staging: dict[str, np.ndarray], production: dict[str, np.ndarray]
) -> np.ndarray:
    """:func:`driftloop.ab.sequential.pooled_variance` at every look of every test."""
    arms = (staging, production)
    records = staging["records"] + production["records"]
    mean = (staging["total"] + production["total"]) / records
    per_record = np.maximum((staging["squares"] + production["squares"]) / records - mean**2, 0)

    def residual(a: dict[str, np.ndarray]) -> np.ndarray:
        return np.maximum(a["y2"] - 2 * mean * a["ym"] + mean**2 * a["m2"], 0.0)

    pairs = sum(a["m2"] - a["records"] for a in arms)
    shared = np.where(
        pairs > 0,
        np.maximum((residual(staging) + residual(production) - per_record * records) / pairs, 0),
        0.0,
    )
    total = np.zeros_like(mean)
    for a in arms:
        g, n = a["clusters"], a["records"]
        robust = g / (g - 1) * residual(a) / n**2
        model = (per_record * n + shared * (a["m2"] - n)) / n**2
        total = total + np.where(g >= 2, np.maximum(robust, model), np.inf)
    return total


def _plug_in(sums: dict[str, np.ndarray], mean: np.ndarray) -> np.ndarray:
    """Per-record variance of one arm's mean: smoothed Bernoulli for 0/1 outcomes (as before)."""
    n, k = sums["records"], sums["total"]
    smooth = (k + 0.5) / (n + 1)
    return np.where(n >= 2, smooth * (1 - smooth) / n, np.inf)


def simulate_aa(
    tests: int = 500,
    records: int = 5_000,
    accuracy: float = 0.55,
    staging_share: float = 0.5,
    alpha: float = 0.05,
    tau: float = 0.02,
    min_samples: int = 200,
    look_every: int = 10,
    seed: int = 0,
) -> AAResult:
    """Simulate ``tests`` A/A tests of ``records`` records each, checked at every look."""
    to_staging, correct = aa_draws(tests, records, accuracy, staging_share, seed)
    decisions = first_decisions(to_staging, correct, alpha, tau, min_samples, look_every)
    return AAResult(
        tests,
        int((decisions > 0).sum()),
        int((decisions < 0).sum()),
        records // look_every,
        alpha,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--staging-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = simulate_aa(
        args.tests, args.records, alpha=args.alpha, staging_share=args.staging_share, seed=args.seed
    )
    print(
        f"{result.tests} A/A tests, {result.looks_per_test} looks each: "
        f"{result.false_promotions} false promotions ({result.false_promotion_rate:.3f}), "
        f"{result.false_rejections} false rejections; alpha {result.alpha}"
    )


if __name__ == "__main__":
    main()
