"""Per-variant numbers of an A/B test, from the prediction log joined with feedback.

The task metrics come with 95% confidence intervals: accuracy (Wilson), macro F1 (bootstrap)
for classification; MAE (t interval) and RMSE (bootstrap) for regression. Beside them: how many
records were answered and how many have feedback, the share of failed requests, and latency
percentiles. The decision itself uses :mod:`driftloop.ab.sequential` on the per-record outcome
of the decision metric.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.ab.sequential import two_sample
from driftloop.task import labels, metric, task_kind
from driftloop.vocabulary import Role

CONFIDENCE = 0.95
TIMELINE_POINTS = 40


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None


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


def outcomes(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Per-record outcome of metric ``name`` for rows with feedback (columns ``prediction`` and
    ``truth``): 1/0 correct (class labels compared as the JSON they travelled in: 6, 6.0 and
    "6" are one class), |error| or error²."""
    return metric(name).outcomes(frame["truth"], frame["prediction"])


def request_outcomes(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One observation per request: the mean outcome of its records, in order of arrival. The
    records of one request are routed together and need not be independent (a review's A/A
    simulation with correlated 50-record requests, counted per record, promoted 18% of the
    time at alpha 0.05); with one-record requests this is the per-record outcome."""
    values = outcomes(frame, name)
    return pd.Series(values).groupby(frame["request_id"].to_numpy(), sort=False).mean().to_numpy()


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
        result.metrics[name] = ESTIMATES[name](labelled)
    return result


def timeline(
    labelled: dict[str, pd.DataFrame], name: str, min_effect: float, alpha: float
) -> list[dict[str, Any]]:
    """The metric per variant as feedback accumulated, with 95% bands, and the difference
    with its always-valid interval: the points the report plots."""
    frames = []
    for variant, frame in labelled.items():
        if len(frame):
            frames.append(
                pd.DataFrame(
                    {
                        "created_at": frame["created_at"].to_numpy(),
                        "variant": variant,
                        "request_id": frame["request_id"].to_numpy(),
                        "outcome": outcomes(frame, name),
                    }
                )
            )
    if not frames:
        return []
    merged = pd.concat(frames).sort_values("created_at", kind="stable").reset_index(drop=True)
    cuts = np.unique(np.linspace(0, len(merged), TIMELINE_POINTS + 1, dtype=int)[1:])
    points = []
    for cut in cuts:
        seen = merged.iloc[:cut]
        point: dict[str, Any] = {"at": pd.Timestamp(seen["created_at"].iloc[-1]).isoformat()}
        groups = {  # one value per request, as the decision counts them
            v: g.groupby("request_id", sort=False)["outcome"].mean().to_numpy()
            for v, g in seen.groupby("variant")
        }
        for variant, values in groups.items():
            mean = float(values.mean())
            half = (
                1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else None
            )
            value = metric(name).value(mean)
            point[variant] = {"n": len(values), "value": value, "half_width": half}
        if all(len(groups.get(v, ())) >= 2 for v in Role):
            result = two_sample(
                groups[Role.PRODUCTION],
                groups[Role.STAGING],
                min_effect,
                alpha,
                metric(name).higher_is_better,
            )
            point["difference"] = {
                "value": result.difference,
                "low": result.ci_low,
                "high": result.ci_high,
            }
        points.append(point)
    return points


def _proportion(correct: np.ndarray) -> Estimate:
    n = len(correct)
    if n == 0:
        return Estimate(None, None, None)
    k = int(correct.sum())
    interval = stats.binomtest(k, n).proportion_ci(CONFIDENCE, method="wilson")
    return Estimate(k / n, interval.low, interval.high)


def _mean(values: np.ndarray) -> Estimate:
    n = len(values)
    if n == 0:
        return Estimate(None, None, None)
    mean = float(values.mean())
    if n < 2:
        return Estimate(mean, None, None)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half)


def _bootstrap(statistic, data: tuple[np.ndarray, ...], value: float) -> Estimate:
    if len(data[0]) < 10:
        return Estimate(value, None, None)
    result = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=500,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=0,
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def _rmse(squared: np.ndarray) -> Estimate:
    if len(squared) == 0:
        return Estimate(None, None, None)
    return _bootstrap(lambda s: math.sqrt(np.mean(s)), (squared,), math.sqrt(squared.mean()))


def _macro_f1(labelled: pd.DataFrame) -> Estimate:
    from sklearn.metrics import f1_score

    if labelled.empty:
        return Estimate(None, None, None)
    predicted, truth = labels(labelled["prediction"]), labels(labelled["truth"])

    def f1(p: np.ndarray, t: np.ndarray) -> float:
        return float(f1_score(t, p, average="macro", zero_division=0))

    return _bootstrap(f1, (predicted, truth), f1(predicted, truth))


ESTIMATES = {  # per metric an A/B report shows: its value over the labelled records, with a CI
    "accuracy": lambda labelled: _proportion(outcomes(labelled, "accuracy")),
    "f1": _macro_f1,
    "mae": lambda labelled: _mean(outcomes(labelled, "mae")),
    "rmse": lambda labelled: _rmse(outcomes(labelled, "rmse")),
}
