"""Realized performance: a batch's or a day's metrics on labelled rows, and the drop test.

A drop is judged against the version's out-of-sample reference with the uncertainty of both
sides, never as a raw difference (at 250 rows accuracy's standard error is about 0.03):

- accuracy: Fisher's exact test on the 2x2 table (right, wrong) x (current, reference),
  one-sided (scipy's ``fisher_exact``, ``alternative="less"``);
- MAE or RMSE: Welch's one-sided t test on the per-row absolute (or squared) errors.

The metric decays when that p-value is at most ``monitoring.alpha`` and the drop is at least
``monitoring.min_drop`` (accuracy points, or a fraction of the reference error): the test keeps
false alarms at ``alpha`` per check on a healthy model; the floor keeps a large batch from
decaying on a drop too small to matter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.config import MonitoringSettings
from driftloop.performance.intervals import Estimate, estimate, outcomes
from driftloop.task import Metric


@dataclass(frozen=True)
class DropTest:
    """The decision metric on current rows against the reference, and the verdict."""

    metric: str
    current: float
    reference: float
    current_rows: int
    reference_rows: int
    drop: float  # positive: worse than the reference (accuracy points, or error units)
    p_value: float
    alpha: float
    min_drop: float  # in the metric's units
    decayed: bool
    test: str

    def sentence(self) -> str:
        verdict = "decay" if self.decayed else "no decay"
        return (
            f"{self.metric} {self.current:.4f} on {self.current_rows} rows against "
            f"{self.reference:.4f} out of sample ({self.reference_rows} rows): drop "
            f"{self.drop:+.4f}, p {self.p_value:.3g} ({self.test}, alpha {self.alpha:g}, "
            f"smallest drop that matters {self.min_drop:.4g}): {verdict}"
        )


@dataclass
class Realized:
    """One batch's or day's labelled rows: metrics with intervals, and the drop test."""

    rows: int
    excluded_rows: int
    metrics: dict[str, Estimate] = field(default_factory=dict)
    test: DropTest | None = None
    reason: str = ""

    @property
    def decayed(self) -> bool:
        return bool(self.test and self.test.decayed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "excluded_rows": self.excluded_rows,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "test": asdict(self.test) if self.test else None,
            "decayed": self.decayed,
            "reason": self.reason,
        }


def measure(
    labelled: pd.DataFrame,
    names: tuple[str, ...],
    decision: Metric,
    reference: pd.DataFrame | None,
    monitoring: MonitoringSettings,
    excluded_rows: int = 0,
) -> Realized:
    """Metrics of ``labelled`` (columns ``prediction`` and ``truth``) and, with a reference
    (the same columns, out of sample) and at least ``monitoring.min_rows`` rows, the test."""
    result = Realized(len(labelled), excluded_rows)
    result.metrics = {n: estimate(n, labelled, monitoring.confidence) for n in names}
    if reference is None:
        result.reason = "the version has no out-of-sample reference: measured, not judged"
    elif len(labelled) < monitoring.min_rows:
        result.reason = (
            f"{len(labelled)} labelled rows; {monitoring.min_rows} needed to judge a drop "
            "(monitoring.min_rows)"
        )
    else:
        result.test = drop_test(
            outcomes(labelled, decision.name),
            outcomes(reference, decision.name),
            decision,
            monitoring,
        )
        result.reason = result.test.sentence()
    return result


def drop_test(
    current: np.ndarray, reference: np.ndarray, metric: Metric, monitoring: MonitoringSettings
) -> DropTest:
    """One-sided test that ``current`` per-row outcomes are worse than ``reference``'s."""
    now, then = metric.aggregate(current), metric.aggregate(reference)
    if metric.higher_is_better:  # accuracy: outcomes are 1 right, 0 wrong
        right, reference_right = int(current.sum()), int(reference.sum())
        table = [
            [right, len(current) - right],
            [reference_right, len(reference) - reference_right],
        ]
        p_value = float(stats.fisher_exact(table, alternative="less").pvalue)
        drop, floor, name = then - now, monitoring.min_drop, "Fisher's exact test"
    else:  # errors (absolute or squared): larger is worse
        if len(current) < 2 or len(reference) < 2 or (np.ptp(current) == np.ptp(reference) == 0):
            p_value = 1.0 if now <= then else 0.0
        else:
            p_value = float(
                stats.ttest_ind(current, reference, equal_var=False, alternative="greater").pvalue
            )
        drop, floor, name = now - then, monitoring.min_drop * then, "Welch's t test"
    if not math.isfinite(p_value):
        p_value = 1.0
    decayed = p_value <= monitoring.alpha and drop >= floor
    return DropTest(
        metric.name,
        now,
        then,
        len(current),
        len(reference),
        drop,
        p_value,
        monitoring.alpha,
        floor,
        decayed,
        name,
    )
