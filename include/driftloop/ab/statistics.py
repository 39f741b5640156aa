"""Per-variant numbers of an A/B test, from the prediction log joined with feedback.

The task metrics come with 95% confidence intervals (``driftloop.performance.intervals``):
accuracy (Wilson), macro F1 (bootstrap) for classification; MAE (t interval) and RMSE
(bootstrap) for regression. Beside them: how many
records were answered and how many have feedback, the share of failed requests, and latency
percentiles. The decision itself uses :mod:`driftloop.ab.sequential` on the per-record outcome
of the decision metric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.ab.sequential import two_sample
from driftloop.performance.intervals import (
    CONFIDENCE,
    Estimate,
    estimate,
    mean,
    outcomes,
    proportion,
)
from driftloop.task import metric, task_kind
from driftloop.vocabulary import Role

TIMELINE_POINTS = 40
__all__ = [
    "Estimate",
    "VariantStats",
    "clustered_outcomes",
    "outcomes",
    "request_outcomes",
    "summarize",
    "timeline",
]


@dataclass
class VariantStats:
    """One variant's numbers over the test so far."""

    variant: str
    version: str
    answered: int  # records answered (non-shadow rows)
    requests: int  # distinct requests, answered or failed
    failed_requests: int  # server errors (5xx) after routing to this variant
    with_feedback: int
    metrics: dict[str, Estimate] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.failed_requests / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "error_rate": self.error_rate,
        }


def request_outcomes(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One observation per request: the mean outcome of its records, in order of arrival. The
    records of one request are routed together and need not be independent (a review's A/A
    simulation with correlated 50-record requests, counted per record, promoted 18% of the
    time at alpha 0.05); with one-record requests this is the per-record outcome."""
    values = outcomes(frame, name)
    return pd.Series(values).groupby(frame["request_id"].to_numpy(), sort=False).mean().to_numpy()


def clustered_outcomes(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per record its outcome, and the cluster it belongs to: its client (column ``client``,
    when the log has one) or else its request. The records of one request, and the requests of
    one sticky client, are routed together and need not be independent; the sequential test's
    variance is taken over these clusters (:mod:`driftloop.ab.sequential`)."""
    clusters = frame["request_id"].astype(str)
    if "client" in frame:
        clusters = frame["client"].astype("string").fillna("request:" + clusters)
    return outcomes(frame, name), clusters.to_numpy()


def summarize(
    variant: str, version: str, requests: pd.DataFrame, labelled: pd.DataFrame, task: str
) -> VariantStats:
    """Numbers for one variant: ``requests`` has one row per log row, ``labelled`` the answered
    records with feedback (columns ``prediction`` and ``truth``)."""
    answered = requests[requests["status"] == 200]
    result = VariantStats(
        variant,
        version,
        answered=len(answered),
        requests=int(requests["request_id"].nunique()),
        failed_requests=int(requests.loc[requests["status"] >= 500, "request_id"].nunique()),
        with_feedback=len(labelled),
    )
    latency = answered["latency_ms"].dropna().to_numpy(dtype=float)
    result.latency_ms = {
        f"p{q}": (float(np.percentile(latency, q)) if len(latency) else None) for q in (50, 95, 99)
    }
    for name in task_kind(task).report_metrics:
        result.metrics[name] = estimate(name, labelled)
    return result


def timeline(
    labelled: dict[str, pd.DataFrame], name: str, min_effect: float, alpha: float
) -> list[dict[str, Any]]:
    """The metric per variant as feedback accumulated, with 95% bands (Wilson's for accuracy,
    so a band never leaves [0, 1]; a t band on the mean outcome otherwise, then mapped like the
    metric, so RMSE's band is in RMSE units and never below 0), and the difference
    with its always-valid interval: the points the report plots."""
    frames = []
    for variant, frame in labelled.items():
        if len(frame):
            frames.append(
                pd.DataFrame(
                    {
                        "created_at": frame["created_at"].to_numpy(),
                        "variant": variant,
                        "cluster": clustered_outcomes(frame, name)[1],
                        "outcome": outcomes(frame, name),
                    }
                )
            )
    if not frames:
        return []
    merged = pd.concat(frames).sort_values("created_at", kind="stable").reset_index(drop=True)
    cuts = np.unique(np.linspace(0, len(merged), TIMELINE_POINTS + 1, dtype=int)[1:])
    cuts = cuts[cuts > 0]  # under 40 records the first cuts round to 0: an empty look
    points = []
    for cut in cuts:
        seen = merged.iloc[:cut]
        point: dict[str, Any] = {"at": pd.Timestamp(seen["created_at"].iloc[-1]).isoformat()}
        groups = {v: g for v, g in seen.groupby("variant")}
        for variant, group in groups.items():
            point[variant] = {"n": len(group), **metric_band(group, name)}
        if all(len(groups.get(v, ())) >= 2 for v in Role):
            production, staging = groups[Role.PRODUCTION], groups[Role.STAGING]
            result = two_sample(
                production["outcome"].to_numpy(),
                staging["outcome"].to_numpy(),
                min_effect,
                alpha,
                metric(name).higher_is_better,
                clusters=(production["cluster"].to_numpy(), staging["cluster"].to_numpy()),
            )
            point["difference"] = result.interval_point()
        points.append(point)
    return points


def metric_band(seen: pd.DataFrame, name: str) -> dict[str, float | None]:
    """The metric over ``seen`` records (column ``outcome``) with its 95% band."""
    values = seen["outcome"].to_numpy(dtype=float)
    chosen = metric(name)
    if chosen.name == "accuracy":
        band = proportion(int(values.sum()), len(values), CONFIDENCE)
        return {"value": band.value, "low": band.low, "high": band.high}
    band = mean(values, CONFIDENCE)
    low = None if band.low is None else chosen.value(max(band.low, 0.0))
    high = None if band.high is None else chosen.value(band.high)
    return {"value": chosen.value(float(values.mean())), "low": low, "high": high}
