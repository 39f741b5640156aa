"""What differs between a classification and a regression task, in one place.

One :class:`TaskKind` per task, found with :func:`task_kind` (or :func:`task_of` settings),
owns: the metrics a model is judged by, the default first, and which direction is better;
how a prediction is compared with the truth (class labels as text, so 6, 6.0 and "6" are one
class; numbers for a regression); the per-record outcome the gate and the A/B test decide on
(right or wrong, or the error); which true values feedback may carry; the PyCaret experiment
and its setup; and the plot logged with a training run. Nothing else in driftloop asks which
task it is.

Only numpy and pandas are imported here; PyCaret, scikit-learn and matplotlib inside the
methods that need them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from driftloop.config import Settings

# --- labels --------------------------------------------------------------------------------


def label(value: Any) -> str:
    """A class label as text: an integral float prints as an integer (6.0 is "6")."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def labels(values: Any) -> np.ndarray:
    """Class labels as text, each as :func:`label` writes it: a column of numbers at once (a
    gate holdout, a large request), any other column value by value (JSON's ints, floats and
    strings mixed)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(str).to_numpy(dtype=object)
    if not pd.api.types.is_float_dtype(series.dtype):
        return np.array([label(v) for v in series], dtype=object)
    numbers = series.to_numpy(dtype=float)
    text = series.astype(str).to_numpy(dtype=object)
    integral = np.isfinite(numbers) & (numbers == np.trunc(numbers))
    exact = integral & (np.abs(numbers) < 2.0**63)  # int64 holds these exactly
    text[exact] = numbers[exact].astype(np.int64).astype(str)
    text[integral & ~exact] = [str(int(n)) for n in numbers[integral & ~exact]]
    return text


# --- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric the gate and the A/B test can decide on: the outcome of each record, and how
    the mean of those outcomes becomes the metric."""

    name: str
    higher_is_better: bool
    outcome: Callable[[Any, Any], np.ndarray]  # (truth, predicted) -> one value per record
    squared: bool = False  # the outcome is a squared error: the metric is its mean's root

    def outcomes(self, truth: Any, predicted: Any) -> np.ndarray:
        """Per record: 1.0 right and 0.0 wrong (accuracy), |error| (MAE) or error² (RMSE)."""
        return self.outcome(truth, predicted)

    def value(self, mean: float) -> float:
        """The metric from the mean of its per-record outcomes."""
        return math.sqrt(mean) if self.squared else float(mean)

    def aggregate(self, outcomes: np.ndarray) -> float:
        """The metric from its per-record outcomes (NaN without any)."""
        return self.value(float(np.mean(outcomes)) if len(outcomes) else math.nan)


def _correct(truth: Any, predicted: Any) -> np.ndarray:
    return (labels(truth) == labels(predicted)).astype(float)


def _errors(truth: Any, predicted: Any) -> np.ndarray:
    return np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float)


ACCURACY = Metric("accuracy", True, _correct)
MAE = Metric("mae", False, lambda truth, predicted: np.abs(_errors(truth, predicted)))
RMSE = Metric("rmse", False, lambda truth, predicted: _errors(truth, predicted) ** 2, True)
METRICS = {m.name: m for m in (ACCURACY, MAE, RMSE)}


def metric(name: str) -> Metric:
    """The metric called ``name`` (accuracy, mae or rmse)."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


# --- task kinds ----------------------------------------------------------------------------


class TaskKind(ABC):
    """Everything that depends on the task; one instance per task."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]  # what the gate and the A/B test decide on; default first
    report_metrics: ClassVar[tuple[str, ...]]  # what an A/B report estimates per variant
    optimize: ClassVar[str]  # PyCaret's sort metric when ``training.optimize`` is empty
    categorical_target: ClassVar[bool]  # profiled and validated as categories, not numbers
    truth_schema: ClassVar[dict[str, Any]]  # JSON schema of a true value in ``/feedback``

    @property
    def default_metric(self) -> Metric:
        return self.metrics[0]

    def decision_metric(self, configured: str | None) -> Metric:
        """The A/B test's metric: ``ab.metric``, else the default."""
        return metric(configured) if configured else self.default_metric

    def gate_metric(self, optimize: str | None) -> Metric:
        """The gate's metric, given the PyCaret metric training sorted by."""
        return self.default_metric

    def score(self, truth: Any, predicted: Any) -> float:
        """The default metric of ``predicted`` against ``truth`` (accuracy, or MAE)."""
        return self.default_metric.aggregate(self.default_metric.outcomes(truth, predicted))

    def importance_scorer(self) -> Any:
        """:meth:`score` as a scikit-learn scorer: through ``predict``, as the gate scores. A
        pipeline's own ``score`` re-encodes labels and fails on a class the model never saw,
        which a holdout after drift may well hold."""
        from sklearn.metrics import make_scorer

        return make_scorer(self.score, greater_is_better=self.default_metric.higher_is_better)

    def usable_truth(self, truth: pd.Series) -> pd.Series:
        """Which stored true values the metrics can use (all, unless the task says otherwise)."""
        return pd.Series(True, index=truth.index)

    def truth_problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be a true value of this task; None when it can."""
        return None

    def training_rows(
        self, frame: pd.DataFrame, target: str, folds: int
    ) -> tuple[pd.DataFrame, list[str]]:
        """The rows PyCaret can cross-validate with ``folds`` folds, and the classes left out."""
        return frame, []

    def setup_options(self) -> dict[str, Any]:
        """Task-specific arguments of PyCaret's ``setup``."""
        return {}

    @abstractmethod
    def experiment(self) -> Any:
        """A fresh PyCaret experiment of this task."""

    @abstractmethod
    def plot_predictions(self, axes: Any, truth: Any, predicted: Any) -> str:
        """Draw predictions against the truth on ``axes``; return the plot's file name."""

    def __repr__(self) -> str:
        return f"task_kind({self.name!r})"


class Classification(TaskKind):
    name = "classification"
    metrics = (ACCURACY,)
    report_metrics = ("accuracy", "f1")
    optimize = "Accuracy"
    categorical_target = True
    truth_schema: ClassVar[dict[str, Any]] = {}  # a number or a string

    def training_rows(
        self, frame: pd.DataFrame, target: str, folds: int
    ) -> tuple[pd.DataFrame, list[str]]:
        # A class with fewer rows than folds cannot be stratified and breaks PyCaret's CV.
        counts = frame[target].value_counts()
        rare = counts[counts < 2 * folds].index
        return (frame[~frame[target].isin(rare)] if len(rare) else frame), [str(c) for c in rare]

    def setup_options(self) -> dict[str, Any]:
        return {"data_split_stratify": True, "fold_strategy": "stratifiedkfold"}

    def experiment(self) -> Any:
        from pycaret.classification import ClassificationExperiment

        return ClassificationExperiment()

    def plot_predictions(self, axes: Any, truth: Any, predicted: Any) -> str:
        from sklearn.metrics import ConfusionMatrixDisplay

        ConfusionMatrixDisplay.from_predictions(
            labels(truth), labels(predicted), ax=axes, colorbar=False
        )
        axes.set_title("Confusion matrix (gate holdout)")
        return "confusion_matrix.png"


class Regression(TaskKind):
    name = "regression"
    metrics = (MAE, RMSE)
    report_metrics = ("mae", "rmse")
    optimize = "MAE"
    categorical_target = False
    truth_schema: ClassVar[dict[str, Any]] = {"type": "number"}

    def gate_metric(self, optimize: str | None) -> Metric:
        """RMSE when training optimizes a squared error, else MAE."""
        return RMSE if (optimize or "").upper() in {"RMSE", "MSE"} else MAE

    def usable_truth(self, truth: pd.Series) -> pd.Series:
        """A finite number (the server refuses others; rows stored before it did are left out)."""
        numbers = pd.to_numeric(
            truth.where(~truth.map(lambda v: isinstance(v, bool))), errors="coerce"
        )
        return pd.Series(np.isfinite(numbers.to_numpy(dtype=float)), index=truth.index)

    def truth_problem(self, value: Any) -> str | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return f"a regression's true value is a finite number, not {value!r}"
        return None

    def experiment(self) -> Any:
        from pycaret.regression import RegressionExperiment

        return RegressionExperiment()

    def plot_predictions(self, axes: Any, truth: Any, predicted: Any) -> str:
        predicted = np.asarray(predicted, dtype=float)
        axes.scatter(predicted, np.asarray(truth, dtype=float) - predicted, s=6, alpha=0.6)
        axes.axhline(0, color="grey")
        axes.set_xlabel("predicted")
        axes.set_ylabel("residual")
        axes.set_title("Residuals (gate holdout)")
        return "residuals.png"


CLASSIFICATION, REGRESSION = Classification(), Regression()
TASKS: dict[str, TaskKind] = {kind.name: kind for kind in (CLASSIFICATION, REGRESSION)}


def task_kind(name: str) -> TaskKind:
    """The task kind called ``name`` (``data.task``: classification or regression)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def task_of(settings: Settings) -> TaskKind:
    """The configured task's kind."""
    return task_kind(settings.data.task)
