"""How often does the gate send a challenger to Staging, when its true advantage is known?

Seeded simulations of paired holdout rows, for the tests and ``benchmarks/gate_simulation.py``:
a challenger truly equal to Production, or truly worse by exactly the margin, should reach
Staging in at most about ``gate_alpha`` of the holdouts; a truly better one, with enough rows,
in most of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftloop.config import TrainingSettings
from driftloop.training.gate import GateOutcome, judge


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
    challenger_error = (1 - scenario.advantage) * np.where(
        shared, production_error, _noise(rng, n, scenario.tails)
    )
    if scenario.metric == "mae":
        return np.abs(challenger_error), np.abs(production_error)
    return challenger_error**2, production_error**2


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
