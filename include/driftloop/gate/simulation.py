"""How often does the gate send a challenger to Staging, when its true advantage is known?

Seeded simulations of paired holdout rows, for the tests and ``benchmarks/gate_simulation.py``:
a challenger truly equal to Production, or truly worse by exactly the margin, should reach
Staging in at most about ``gate_alpha`` of the holdouts, over every re-gate
(:func:`ever_rates`); a truly better one, with enough rows, in most of them. The challenger's
errors may follow another law than Production's at the same true MAE or RMSE
(``challenger_tails``: Student-t; ``contamination``: a share of rows at 5x the sd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from driftloop.config import TrainingSettings
from driftloop.gate.statistics import GateOutcome, judge


@dataclass(frozen=True)
class Scenario:
    """A challenger whose true advantage over Production is ``advantage`` (in the margin's
    units: accuracy points, or the fraction of Production's error saved)."""

    metric: str
    rows: int
    advantage: float
    accuracy: float = 0.55  # Production's accuracy (classification)
    discordance: float = 0.3  # share of rows where exactly one model is right
    correlation: float = 0.8  # share of rows where both models err alike (regression)
    tails: float | None = None  # Student-t degrees of freedom of the errors; None: normal
    challenger_tails: float | None = None  # the challenger's errors alone Student-t, same error
    contamination: float = 0.0  # the challenger's rows at 5x the sd (same error), a share

    def __post_init__(self) -> None:
        if self.metric == "accuracy" and abs(self.advantage) > self.discordance:
            raise ValueError(
                f"an accuracy advantage of {self.advantage:g} needs at least that share of rows "
                f"where the models disagree, not {self.discordance:g}"
            )


def paired_rows(scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One holdout: per-row values of challenger and Production, as :func:`gate.per_row` gives."""
    n = scenario.rows
    if scenario.metric == "accuracy":
        # Cells: only the challenger right (b), only Production right (c), both, neither.
        only_challenger = (scenario.discordance + scenario.advantage) / 2
        only_production = (scenario.discordance - scenario.advantage) / 2
        both = scenario.accuracy - only_production
        cells = rng.multinomial(
            1, [only_challenger, only_production, both, 1 - both - scenario.discordance], n
        )
        challenger = (cells[:, 0] + cells[:, 2]).astype(float)
        production = (cells[:, 1] + cells[:, 2]).astype(float)
        return challenger, production
    # With probability ``correlation`` a row's challenger error is Production's, else an
    # independent draw: both errors keep the same marginal law (also with heavy tails), so the
    # true MAE and RMSE ratio is exactly ``1 - advantage``.
    production_error = _noise(rng, n, scenario.tails)
    shared = rng.random(n) < scenario.correlation
    challenger_error = (1 - scenario.advantage) * _reshaped(
        np.where(shared, production_error, _noise(rng, n, scenario.tails)), scenario, rng
    )
    if scenario.metric == "mae":
        return np.abs(challenger_error), np.abs(production_error)
    return challenger_error**2, production_error**2


def _reshaped(normal: np.ndarray, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """The challenger's errors in their own law, scaled to Production's true MAE or RMSE."""
    if scenario.challenger_tails is not None:
        df = scenario.challenger_tails
        heavy = normal / np.sqrt(rng.chisquare(df, len(normal)) / df)  # Student-t, df
        if scenario.metric == "mae":
            mean_abs_t = (
                2
                * math.sqrt(df)
                * special.gamma((df + 1) / 2)
                / (math.sqrt(math.pi) * (df - 1) * special.gamma(df / 2))
            )
            return heavy * math.sqrt(2 / math.pi) / mean_abs_t
        return heavy * math.sqrt((df - 2) / df)
    if scenario.contamination:
        share = scenario.contamination
        wide = np.where(rng.random(len(normal)) < share, 5.0, 1.0) * normal
        return wide / ((1 + 4 * share) if scenario.metric == "mae" else math.sqrt(1 + 24 * share))
    return normal


def _noise(rng: np.random.Generator, n: int, tails: float | None) -> np.ndarray:
    return rng.standard_normal(n) if tails is None else rng.standard_t(tails, n)


def outcome_rates(
    scenario: Scenario, training: TrainingSettings, trials: int, seed: int
) -> dict[GateOutcome, float]:
    """The share of ``trials`` simulated holdouts ending in each outcome."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(GateOutcome, 0)
    for _ in range(trials):
        challenger, production = paired_rows(scenario, rng)
        counts[judge(challenger, production, scenario.metric, training).outcome] += 1
    return {outcome: count / trials for outcome, count in counts.items()}


def ever_rates(
    scenario: Scenario, training: TrainingSettings, trials: int, seed: int
) -> dict[str, float]:
    """Over every look a version gets: the first gate on ``scenario.rows`` rows, then up to
    ``training.gate_retries`` re-gates, each on a holdout grown by another ``scenario.rows``
    (the same rows plus new ones, as ``gatekeeper.grown_holdout`` grows it). The shares of
    trials ever staged, ever rejected by the test, and rejected for staying undecided."""
    rng = np.random.default_rng(seed)
    looks = training.gate_retries + 1
    grown = Scenario(**{**scenario.__dict__, "rows": scenario.rows * looks})
    counts = {"staged": 0, "rejected": 0, "undecided": 0}
    for _ in range(trials):
        challenger, production = paired_rows(grown, rng)
        for attempt in range(1, looks + 1):
            end = scenario.rows * attempt
            outcome = judge(
                challenger[:end], production[:end], scenario.metric, training, attempt
            ).outcome
            if outcome is GateOutcome.STAGING:
                counts["staged"] += 1
                break
            if outcome is GateOutcome.REJECTED:
                counts["rejected"] += 1
                break
        else:
            counts["undecided"] += 1
    return {key: count / trials for key, count in counts.items()}
