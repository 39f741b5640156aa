"""Metrics with their confidence intervals, for the A/B report and performance monitoring.

Accuracy is a proportion: its interval is Wilson's (scipy), which stays inside [0, 1] however
few the records; macro F1 and RMSE get a percentile bootstrap; MAE a t interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.task import labels, metric

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None


def outcomes(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Per-record outcome of metric ``name`` for rows with feedback (columns ``prediction`` and
    ``truth``): 1/0 correct (class labels compared as the JSON they travelled in: 6, 6.0 and
    "6" are one class), |error| or error²."""
    return metric(name).outcomes(frame["truth"], frame["prediction"])


def proportion(correct: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """``correct`` of ``n`` with its Wilson score interval, inside [0, 1]."""
    if n == 0:
        return Estimate(None, None, None)
    interval = stats.binomtest(int(correct), int(n)).proportion_ci(confidence, method="wilson")
    return Estimate(correct / n, float(interval.low), float(interval.high))


def mean(values: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    n = len(values)
    if n == 0:
        return Estimate(None, None, None)
    average = float(values.mean())
    if n < 2:
        return Estimate(average, None, None)
    spread = float(values.std(ddof=1)) / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * spread
    return Estimate(average, average - half, average + half)


def _bootstrap(
    statistic,
    data: tuple[np.ndarray, ...],
    value: float,
    confidence: float,
    vectorized: bool = False,
) -> Estimate:
    if len(data[0]) < 10:
        return Estimate(value, None, None)
    result = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=vectorized,
        batch=50 if vectorized else None,  # 50 resamples at a time: memory stays bounded
        n_resamples=500,
        confidence_level=confidence,
        method="percentile",
        random_state=0,
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def _accuracy(labelled: pd.DataFrame, confidence: float) -> Estimate:
    correct = outcomes(labelled, "accuracy")
    return proportion(int(correct.sum()), len(correct), confidence)


def _mae(labelled: pd.DataFrame, confidence: float) -> Estimate:
    return mean(outcomes(labelled, "mae"), confidence)


def _rmse(labelled: pd.DataFrame, confidence: float) -> Estimate:
    squared = outcomes(labelled, "rmse")
    if len(squared) == 0:
        return Estimate(None, None, None)
    return _bootstrap(
        lambda s: math.sqrt(np.mean(s)), (squared,), math.sqrt(squared.mean()), confidence
    )


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro F1 over the classes present in either array (labels as text)."""
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def macro_f1_resampled(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """:func:`macro_f1` of each row of ``(resamples, n)`` label arrays at once: per class
    ``2 tp / (2 tp + fp + fn)``, averaged over the classes present in that row's truth or
    predictions (sklearn's ``average="macro"``). The bootstrap called sklearn once per
    resample, which took most of an A/B evaluation's time."""
    truth, predicted = np.atleast_2d(truth), np.atleast_2d(predicted)
    _, codes = np.unique(np.concatenate([truth, predicted], axis=-1), return_inverse=True)
    codes = codes.reshape(truth.shape[0], -1)
    rows, n = truth.shape
    classes = int(codes.max()) + 1
    shifted = codes + (np.arange(rows) * classes)[:, None]
    t, p = shifted[:, :n], shifted[:, n:]
    size = rows * classes
    hits = np.bincount(t[t == p], minlength=size).reshape(rows, classes)
    counted = np.bincount(t.ravel(), minlength=size) + np.bincount(p.ravel(), minlength=size)
    counted = counted.reshape(rows, classes)
    present = counted > 0
    f1 = np.divide(2 * hits, counted, out=np.zeros(counted.shape), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


def _macro_f1(labelled: pd.DataFrame, confidence: float) -> Estimate:
    if labelled.empty:
        return Estimate(None, None, None)
    predicted, truth = labels(labelled["prediction"]), labels(labelled["truth"])
    # resampled as integer codes: the same classes, cheaper to count than text
    _, codes = np.unique(np.concatenate([predicted, truth]), return_inverse=True)
    return _bootstrap(
        lambda p, t, axis=-1: macro_f1_resampled(t, p),
        (codes[: len(predicted)], codes[len(predicted) :]),
        macro_f1(truth, predicted),
        confidence,
        vectorized=True,
    )


ESTIMATES: dict[str, Callable[[pd.DataFrame, float], Estimate]] = {
    # per metric a report shows: its value over the labelled records, with an interval
    "accuracy": _accuracy,
    "f1": _macro_f1,
    "mae": _mae,
    "rmse": _rmse,
}


def estimate(name: str, labelled: pd.DataFrame, confidence: float = CONFIDENCE) -> Estimate:
    """Metric ``name`` (accuracy, f1, mae or rmse) of ``labelled`` with its interval."""
    return ESTIMATES[name](labelled, confidence)
