"""PyCaret AutoML: setup, compare_models within a time budget, finalize_model.

PyCaret's ``log_experiment`` is broken with MLflow 3, so nothing here logs: ``tracking`` does.
Models are built with ``n_jobs=1`` so that serving predicts single-threaded (a thread pool costs
about 20 ms per one-row prediction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data import group_split

log = logging.getLogger(__name__)

DEFAULT_METRIC = {"classification": "Accuracy", "regression": "MAE"}
LOWER_IS_BETTER = {"MAE", "MSE", "RMSE", "RMSLE", "MAPE"}


class TrainingError(RuntimeError):
    """Training could not produce a model; the message says why."""


@dataclass
class TrainedModel:
    """A finalized PyCaret pipeline and what was learned on the way."""

    pipeline: Any
    model_name: str
    compare_table: pd.DataFrame
    cv_metrics: dict[str, float]
    holdout_metrics: dict[str, float]
    metric: str
    train_rows: int
    dropped_classes: list[str] = field(default_factory=list)


def optimize_metric(settings: Settings) -> str:
    return settings.training.optimize or DEFAULT_METRIC[settings.data.task]


def train(frame: pd.DataFrame, settings: Settings) -> TrainedModel:
    """Compare the configured models on ``frame`` (features and target) and finalize the best."""
    target, training = settings.data.target, settings.training
    frame = frame[[*settings.feature_columns, target]].dropna(subset=[target])
    dropped: list[str] = []
    if settings.data.task == "classification":
        # A class with fewer rows than folds cannot be stratified and breaks PyCaret's CV.
        counts = frame[target].value_counts()
        rare = counts[counts < 2 * training.folds].index
        dropped = [str(c) for c in rare]
        if dropped:
            log.info("leaving out classes too rare to cross-validate: %s", dropped)
            frame = frame[~frame[target].isin(rare)]
    if len(frame) < 4 * training.folds:
        raise TrainingError(
            f"{len(frame)} labelled rows are too few to train with {training.folds} folds"
        )
    # Exact duplicate rows never straddle PyCaret's own train/test split.
    fit_part, test_part = group_split(frame, 0.8, np.random.default_rng(training.seed))
    experiment = _experiment(settings)
    metric = optimize_metric(settings)
    log.info(
        "setup: %d training rows, %d test rows, %d folds",
        len(fit_part),
        len(test_part),
        training.folds,
    )
    experiment.setup(
        data=fit_part,
        test_data=test_part,
        target=target,
        categorical_features=settings.data.categorical_features or None,
        fold=training.folds,
        fold_shuffle=True,
        session_id=training.seed,
        n_jobs=1,
        verbose=False,
        html=False,
        system_log=False,  # PyCaret would append to ./logs.log wherever it runs
        **(
            {"data_split_stratify": True, "fold_strategy": "stratifiedkfold"}
            if settings.data.task == "classification"
            else {}
        ),
    )
    log.info(
        "compare_models: %s, budget %.1f min, sorted by %s",
        training.models or "PyCaret defaults",
        training.budget_minutes,
        metric,
    )
    best = experiment.compare_models(
        include=training.models or None,
        sort=metric,
        budget_time=training.budget_minutes,
        n_select=1,
        verbose=False,
        errors="ignore",
    )
    table = experiment.pull()
    if isinstance(best, list) or table.empty:
        raise TrainingError("no candidate model trained successfully")
    log.info("compared models:\n%s", table.to_string())
    experiment.predict_model(best, verbose=False)
    holdout = experiment.pull()
    pipeline = experiment.finalize_model(best)
    _single_threaded(pipeline)
    best_row = table.iloc[0]
    return TrainedModel(
        pipeline=pipeline,
        model_name=str(best_row["Model"]),
        compare_table=table,
        cv_metrics=_numbers(best_row),
        holdout_metrics=_numbers(holdout.iloc[0]),
        metric=metric,
        train_rows=len(frame),
        dropped_classes=dropped,
    )


def _experiment(settings: Settings) -> Any:
    if settings.data.task == "classification":
        from pycaret.classification import ClassificationExperiment

        return ClassificationExperiment()
    from pycaret.regression import RegressionExperiment

    return RegressionExperiment()


def _numbers(row: pd.Series) -> dict[str, float]:
    return {
        str(k): float(v)
        for k, v in row.items()
        if isinstance(v, int | float | np.number) and k != "TT (Sec)"
    }


def _single_threaded(pipeline: Any) -> None:
    """Make every step of the pipeline predict on one thread."""
    for _name, step in getattr(pipeline, "steps", []):
        params = step.get_params(deep=False) if hasattr(step, "get_params") else {}
        for key in ("n_jobs", "nthread", "thread_count"):
            if key in params and params[key] != 1:
                step.set_params(**{key: 1})


def score(pipeline: Any, frame: pd.DataFrame, settings: Settings) -> float:
    """The gate's metric of ``pipeline`` on ``frame``: accuracy, or MAE for regression."""
    from sklearn.metrics import accuracy_score, mean_absolute_error

    features, truth = frame[settings.feature_columns], frame[settings.data.target]
    predicted = pipeline.predict(features)
    if settings.data.task == "classification":
        return float(accuracy_score(truth.astype(str), pd.Series(predicted).astype(str)))
    return float(mean_absolute_error(truth, predicted))
