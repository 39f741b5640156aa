"""The paired design's rows: Production's served answers matched with Staging's shadow answers
on the same labelled record (a shadow row carries the record id of the row it shadows, and
feedback joins both by it), and the numbers the look reports and decides on.

Staging's numbers come from its shadow rows: its failed shadow predictions and its own
prediction time are what its guardrails read, as its served rows are in the unpaired design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.ab.paired import PairedTable, paired_test
from driftloop.ab.statistics import VariantStats, clustered_outcomes, metric_band, summarize
from driftloop.storage import BATCH, FORCED, ABTest
from driftloop.task import metric as metric_named
from driftloop.task import task_kind
from driftloop.vocabulary import Role

TIMELINE_POINTS = 40


@dataclass
class PairedArms:
    """Both variants' numbers over the pairs, and the pairs' outcomes."""

    production: VariantStats
    staging: VariantStats
    production_outcomes: np.ndarray
    staging_outcomes: np.ndarray
    clusters: np.ndarray
    table: PairedTable | None  # classification only
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return len(self.production_outcomes)


def paired_arms(
    rows: pd.DataFrame, test: ABTest, task: str, metric: str, tau: float, alpha: float
) -> PairedArms:
    """``rows``: :func:`driftloop.ab.rows.load_rows` with ``shadow=True``."""
    kept = rows[~rows["assignment"].isin([FORCED, BATCH])]
    served = kept[
        ~kept["shadow"].astype(bool)
        & (kept["variant"] == Role.PRODUCTION)
        & (kept["model_version"] == test.production_version)
    ]
    shadows = kept[
        kept["shadow"].astype(bool)
        & (kept["variant"] == Role.STAGING)
        & (kept["model_version"] == test.staging_version)
    ]
    usable = task_kind(task).usable_truth
    labelled = served[(served["status"] == 200) & served["has_truth"] & usable(served["truth"])]
    answered = shadows[(shadows["status"] == 200) & shadows["record_id"].notna()]
    pairs = labelled.merge(
        answered[["record_id", "prediction"]], on="record_id", suffixes=("", "_staging")
    )
    staging_view = pairs.assign(prediction=pairs["prediction_staging"])
    production_labelled = pairs.drop(columns="prediction_staging")
    production_outcomes, clusters = clustered_outcomes(production_labelled, metric)
    staging_outcomes = clustered_outcomes(staging_view, metric)[0]
    table = (
        PairedTable.of(production_outcomes > 0.5, staging_outcomes > 0.5)
        if metric_named(metric).name == "accuracy"
        else None
    )
    return PairedArms(
        summarize(Role.PRODUCTION, test.production_version, served, production_labelled, task),
        summarize(Role.STAGING, test.staging_version, shadows, staging_view, task),
        production_outcomes,
        staging_outcomes,
        clusters,
        table,
        _timeline(pairs, production_outcomes, staging_outcomes, clusters, metric, tau, alpha),
    )


def _timeline(
    pairs: pd.DataFrame,
    production: np.ndarray,
    staging: np.ndarray,
    clusters: np.ndarray,
    metric: str,
    tau: float,
    alpha: float,
) -> list[dict[str, Any]]:
    """Both variants' metric on the pairs as they accumulated, and the paired difference with
    its always-valid interval: the points the report plots (as the unpaired timeline's)."""
    if len(pairs) < 2:
        return []
    higher = metric_named(metric).higher_is_better
    cuts = np.unique(np.linspace(0, len(pairs), TIMELINE_POINTS + 1, dtype=int)[1:])
    points = []
    for cut in cuts[cuts >= 2]:
        point: dict[str, Any] = {"at": pd.Timestamp(pairs["created_at"].iloc[cut - 1]).isoformat()}
        for variant, values in ((Role.PRODUCTION, production), (Role.STAGING, staging)):
            point[variant] = {
                "n": int(cut),
                **metric_band(pd.DataFrame({"outcome": values[:cut]}), metric),
            }
        result = paired_test(production[:cut], staging[:cut], tau, alpha, higher, clusters[:cut])
        point["difference"] = result.interval_point()
        points.append(point)
    return points
