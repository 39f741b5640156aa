"""PyCaret AutoML: setup, compare_models within a time budget, finalize_model.

PyCaret's ``log_experiment`` is broken with MLflow 3, so nothing here logs: ``tracking`` does.
Models are built with ``n_jobs=1`` so that serving predicts single-threaded (a thread pool costs
about 20 ms per one-row prediction).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data import group_split
from driftloop.task import task_of
from driftloop.training.candidates import own_model_names, resolve

log = logging.getLogger(__name__)


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
    return settings.training.optimize or task_of(settings).optimize


def train(frame: pd.DataFrame, settings: Settings) -> TrainedModel:
    """Compare the configured models on ``frame`` (features and target) and finalize the best."""
    _open_standard_streams()
    target, training, task = settings.data.target, settings.training, task_of(settings)
    frame = frame[[*settings.feature_columns, target]].dropna(subset=[target])
    frame, dropped = task.training_rows(frame, target, training.folds)
    if dropped:
        log.info("leaving out classes too rare to cross-validate: %s", dropped)
    if len(frame) < 4 * training.folds:
        raise TrainingError(
            f"{len(frame)} labelled rows are too few to train with {training.folds} folds"
        )
    # Before PyCaret's setup, so that a model list that cannot learn this task fails at once.
    candidates = resolve(training.models, frame[target], task, training.seed)
    if training.models and not candidates:
        raise TrainingError(f"none of the models {training.models} can learn a {task.name} task")
    # Exact duplicate rows never straddle PyCaret's own train/test split.
    fit_part, test_part = group_split(frame, 0.8, np.random.default_rng(training.seed))
    experiment = task.experiment()
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
        **task.setup_options(),
    )
    log.info(
        "compare_models: %s, budget %.1f min, sorted by %s",
        training.models or "PyCaret defaults",
        training.budget_minutes,
        metric,
    )
    best = experiment.compare_models(
        include=candidates or None,
        sort=metric,
        budget_time=training.budget_minutes,
        n_select=1,
        verbose=False,
        errors="ignore",
    )
    table = experiment.pull()
    for key, name in own_model_names(candidates).items():
        if key in table.index:
            table.loc[key, "Model"] = name
    if isinstance(best, list) or table.empty:
        raise TrainingError(
            "no candidate model trained successfully" + _first_failure(experiment, candidates)
        )
    log.info("compared models:\n%s", table.to_string())
    experiment.predict_model(best, verbose=False)
    holdout = experiment.pull()
    pipeline = experiment.finalize_model(best)
    _single_threaded(pipeline)
    _quiet_lightgbm(pipeline)
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


def _quiet_lightgbm(pipeline: Any) -> None:
    """LightGBM's estimators print every native message (an "[Info]" line per class and a "No
    further splits" warning per tree that cannot split, dozens per fit) straight to stdout.
    PyCaret hides them while it fits; a later refit of the pipeline (the performance
    reference's folds) does not, so the finalized model gets LightGBM's silent verbosity, which
    every clone of it keeps. Real failures still raise."""
    for _name, step in getattr(pipeline, "steps", []):
        if type(step).__module__.startswith("lightgbm"):
            step.set_params(verbosity=-1)


def score(pipeline: Any, frame: pd.DataFrame, settings: Settings) -> float:
    """The task's default metric of ``pipeline`` on ``frame``: accuracy, or MAE for regression."""
    predicted = pipeline.predict(frame[settings.feature_columns])
    return task_of(settings).score(frame[settings.data.target], predicted)


def _open_standard_streams() -> None:
    """PyCaret sends fds 1 and 2 through pipes while models fit (wurlitzer, which asks
    ``sys.__stdout__`` and ``sys.__stderr__`` for their fds). In a task process of an
    ``airflow celery worker`` those can arrive closed, and then every candidate fails with
    "I/O operation on closed file"; reopen them on fds 1 and 2 (or on /dev/null)."""
    for name, fd in (("__stdout__", 1), ("__stderr__", 2)):
        stream = getattr(sys, name)
        if stream is not None and not stream.closed:
            continue
        try:
            os.fstat(fd)
            reopened = open(fd, "w", closefd=False)  # noqa: SIM115 - lives as long as sys
        except OSError:
            reopened = open(os.devnull, "w")  # noqa: SIM115
        setattr(sys, name, reopened)
        log.info("sys.%s was closed; reopened for PyCaret's output capture", name)


def _first_failure(experiment: Any, candidates: list[Any]) -> str:
    """Why the first candidate failed: compare_models (errors="ignore") keeps no reason, so
    the first one is trained once more on its own to say it."""
    try:
        experiment.create_model(candidates[0] if candidates else "lr", verbose=False)
    except Exception as exc:
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)[-4:]
        where = " <- ".join(
            f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames)
        )
        return f" (the first, on its own: {type(exc).__name__}: {exc}, at {where})"
    return ""
