"""How often the sequential test promotes a Staging version that is no better (A/A tests).

Every simulated test splits traffic like the server does (``staging_share``), gives both
variants the same true accuracy, and looks at the results after every ``look_every`` records
with feedback, from ``min_samples`` per variant on, the way ``ab_evaluate`` may look at them.
A false promotion is a test that ever crosses the boundary on Staging's side. Run

    python -m driftloop.ab.simulation --tests 1000

to print the rate; the test suite checks it stays at or under alpha + 0.02.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from driftloop.ab.sequential import log_likelihood_ratios


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


def aa_draws(
    tests: int, records: int, accuracy: float, staging_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per test and record: routed to Staging, and answered right (the same chance for both)."""
    rng = np.random.default_rng(seed)
    return rng.random((tests, records)) < staging_share, rng.random((tests, records)) < accuracy


def first_decisions(
    to_staging: np.ndarray,
    correct: np.ndarray,
    alpha: float,
    tau: float,
    min_samples: int,
    look_every: int,
) -> np.ndarray:
    """Per test, the first crossing at a look: +1 promotes, -1 rejects, 0 never decides."""
    looks = np.arange(look_every, to_staging.shape[1] + 1, look_every) - 1

    def cumulative(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.cumsum(mask, axis=1)[:, looks]
        k = np.cumsum(mask & correct, axis=1)[:, looks]
        return n, k

    n_s, k_s = cumulative(to_staging)
    n_p, k_p = cumulative(~to_staging)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_s, p_p = k_s / n_s, k_p / n_p
        smooth_s, smooth_p = (k_s + 0.5) / (n_s + 1), (k_p + 0.5) / (n_p + 1)
        variance = smooth_s * (1 - smooth_s) / n_s + smooth_p * (1 - smooth_p) / n_p
        log_ratio = log_likelihood_ratios(p_s - p_p, variance, tau)
    eligible = (n_s >= min_samples) & (n_p >= min_samples)
    crossed = eligible & (log_ratio >= np.log(1 / alpha))
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    decisions = np.zeros(len(first), dtype=int)
    rows = np.flatnonzero(first >= 0)
    decisions[rows] = np.where((p_s - p_p)[rows, first[rows]] > 0, 1, -1)
    return decisions


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
