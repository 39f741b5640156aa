"""Estimated performance before labels arrive: confidence-based performance estimation (CBPE,
as NannyML's) for classifiers.

The version's probabilities are calibrated on its out-of-sample predictions (one isotonic
regression per class, one-vs-rest, scikit-learn's ``IsotonicRegression``; rows renormalised to
sum to 1), never on rows the finalized model was fitted on, whose probabilities are
overconfident. For a batch, the calibrated probability of each predicted class is the chance
that the prediction is right: their mean estimates accuracy; the expected confusion counts per
class (TP, FP, FN summed from the probabilities) estimate macro F1. The band is where the
realized metric would fall if the calibration holds, from the batch size: labels drawn from the
calibrated probabilities, the metric computed on each draw.

What it sees: a shift into regions where the model is unsure (its probabilities flatten). What
it cannot see, by design: a concept shift that keeps the inputs (the same probabilities, wrong
now) -- only realized performance catches that. Regression gets no estimate: a model's point
prediction carries no confidence to calibrate (direct loss estimation would need a second model
of the error, trained on the same reference; not offered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from driftloop.config import MonitoringSettings
from driftloop.performance.reference import ReferencePredictions

DRAWS = 200
SIMULATED_ROWS = 20_000  # larger batches: the band from a sample, narrowed by sqrt(size)


class Calibrator:
    """Per-class isotonic calibration fitted on a version's out-of-sample probabilities."""

    def __init__(self, reference: ReferencePredictions) -> None:
        from sklearn.isotonic import IsotonicRegression

        if reference.probabilities is None or not reference.classes:
            raise ValueError("the version's reference has no probabilities to calibrate")
        self.classes = list(reference.classes)
        truth = np.asarray(reference.truth, dtype=object)
        self._models = []
        for index, name in enumerate(self.classes):
            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            model.fit(reference.probabilities[:, index], (truth == name).astype(float))
            self._models.append(model)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        columns = [m.predict(probabilities[:, i]) for i, m in enumerate(self._models)]
        calibrated = np.column_stack(columns)
        totals = calibrated.sum(axis=1, keepdims=True)
        flat = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        return np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1.0), flat)


@dataclass(frozen=True)
class EstimatedMetric:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Estimated:
    """A batch's estimated accuracy and macro F1 with bands, and whether it dropped."""

    rows: int
    metrics: dict[str, EstimatedMetric]
    reference_accuracy: float
    dropped: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "reference_accuracy": self.reference_accuracy,
            "dropped": self.dropped,
            "reason": self.reason,
        }


def estimate_performance(
    calibrator: Calibrator,
    probabilities: np.ndarray,
    reference_accuracy: float,
    monitoring: MonitoringSettings,
    predictions: np.ndarray | None = None,
    seed: int = 0,
) -> Estimated:
    """Estimate accuracy and macro F1 of a batch from its probabilities (classes in the
    calibrator's order) and the model's predictions (class labels as text; without them, the
    most probable class). ``dropped``: the band's upper end (at ``1 - alpha``) is below the
    reference and the estimated drop is at least ``min_drop``."""
    calibrated = calibrator.calibrate(np.asarray(probabilities, dtype=float))
    predicted = calibrated.argmax(axis=1)
    if predictions is not None:  # the model's own decision (an ordinal forest's, say)
        position = {name: i for i, name in enumerate(calibrator.classes)}
        chosen = np.array([position.get(str(p), -1) for p in predictions])
        predicted = np.where(chosen >= 0, chosen, predicted)
    n, k = calibrated.shape
    accuracy = float(calibrated[np.arange(n), predicted].mean())
    f1 = _expected_macro_f1(calibrated, predicted)
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if n <= SIMULATED_ROWS else rng.choice(n, SIMULATED_ROWS, replace=False)
    narrowing = np.sqrt(len(sample) / n)
    draws = _simulated(calibrated[sample], predicted[sample], k, rng)
    alpha = monitoring.alpha
    metrics = {}
    for name, value, column in (("accuracy", accuracy, 0), ("f1", f1, 1)):
        spread = draws[:, column] - draws[:, column].mean()
        low, high = np.quantile(spread, [alpha, 1 - alpha]) * narrowing
        metrics[name] = EstimatedMetric(
            value, float(max(value + low, 0.0)), float(min(value + high, 1.0))
        )
    drop = reference_accuracy - accuracy
    dropped = metrics["accuracy"].high < reference_accuracy and drop >= monitoring.min_drop
    reason = (
        f"estimated accuracy {accuracy:.4f} (band {metrics['accuracy'].low:.4f} to "
        f"{metrics['accuracy'].high:.4f} at {1 - alpha:.0%}) against {reference_accuracy:.4f} "
        f"out of sample: {'estimated drop' if dropped else 'no estimated drop'}"
    )
    return Estimated(n, metrics, reference_accuracy, dropped, reason)


def _expected_macro_f1(calibrated: np.ndarray, predicted: np.ndarray) -> float:
    """Macro F1 from expected confusion counts: per class, TP is the probability mass of the
    class on rows predicted as it, FP the rest of those rows, FN its mass elsewhere."""
    scores = []
    for index in range(calibrated.shape[1]):
        mine = predicted == index
        p = calibrated[:, index]
        tp, fp, fn = p[mine].sum(), (1 - p[mine]).sum(), p[~mine].sum()
        denominator = 2 * tp + fp + fn
        if denominator > 0:
            scores.append(2 * tp / denominator)
    return float(np.mean(scores)) if scores else 0.0


def _simulated(
    calibrated: np.ndarray, predicted: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Accuracy and macro F1 under ``DRAWS`` draws of labels from the calibrated probabilities."""
    cumulative = calibrated.cumsum(axis=1)
    cumulative[:, -1] = 1.0
    results = np.empty((DRAWS, 2))
    for draw in range(DRAWS):
        u = rng.random(len(calibrated))[:, None]
        truth = (u > cumulative).sum(axis=1).clip(0, k - 1)
        results[draw, 0] = float((truth == predicted).mean())
        results[draw, 1] = _macro_f1_codes(truth, predicted, k)
    return results


def _macro_f1_codes(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Macro F1 of class codes over the classes present in either (as scikit-learn's)."""
    confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    fp, fn = confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp
    present = (tp + fp + fn) > 0
    return float((2 * tp[present] / (2 * tp + fp + fn)[present]).mean()) if present.any() else 0.0
