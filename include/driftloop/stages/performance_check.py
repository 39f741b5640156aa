"""The stored side of performance monitoring: a batch's predictions, its checks, the decay event.

``drift_monitor`` calls :func:`assess_batch` with each checked batch: the Production version
predicts it (timed apart from the drift check), the predictions are kept (with the truth when
the batch carries labels, and which rows the version trained on), and one check is stored: the
realized metrics when labelled, the estimate before labels (classification), prediction drift.
Late labels (``driftloop batches label``) and ``/feedback`` join the same stored rows, per batch
and per day (:func:`check_day`). A realized decay is stored unannounced; the DAGs emit
``driftloop://decay`` for it once (:func:`take_decay`).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import comparable_row_keys
from driftloop.performance.attribution import attribution_drift
from driftloop.performance.estimated import Calibrator, Estimated, estimate_performance
from driftloop.performance.prediction_drift import prediction_drift, prediction_profile
from driftloop.performance.realized import Realized, measure
from driftloop.performance.reference import ReferencePredictions, load_reference
from driftloop.performance.rows import (
    PREDICTION,
    TRAINED_ON,
    TRUTH,
    feedback_rows,
    kept_rows_of_day,
    predictions_path,
    write_rows,
)
from driftloop.stages import alerts
from driftloop.storage import Batch, PerformanceCheck, session_scope, utcnow
from driftloop.task import labels, task_of

log = logging.getLogger(__name__)
BATCH, DAY = "batch", "day"


@dataclass
class BatchPerformance:
    """What the Production version did on one batch, as the drift report shows it."""

    batch_id: int
    model_version: str
    rows: int
    inference_seconds: float
    realized: Realized | None = None
    estimated: Estimated | None = None
    prediction_drift: dict[str, Any] | None = None
    attribution_drift: dict[str, dict[str, float]] | None = None
    check_id: int | None = None
    new_decay: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "model_version": self.model_version,
            "rows": self.rows,
            "inference_seconds": self.inference_seconds,
            "realized": self.realized.to_dict() if self.realized else None,
            "estimated": self.estimated.to_dict() if self.estimated else None,
            "prediction_drift": self.prediction_drift,
            "attribution_drift": self.attribution_drift,
            "check_id": self.check_id,
            "new_decay": self.new_decay,
            "notes": self.notes,
        }


def assess_batch(
    settings: Settings,
    engine: sa.Engine,
    batch_id: int,
    frame: pd.DataFrame,
    version: str,
    model: Any,
) -> BatchPerformance:
    """Predict ``frame`` with ``model`` (a loaded version: ``predict`` and ``classes``), keep
    the predictions, and store the batch's check."""
    task = task_of(settings)
    classifier = task.categorical_target
    started = time.perf_counter()
    predictions, probabilities = model.predict(frame[list(model.schema.names)])
    seconds = time.perf_counter() - started
    predictions = labels(predictions) if classifier else np.asarray(predictions, dtype=float)
    reference = load_reference(settings, engine, version)
    result = BatchPerformance(batch_id, version, len(frame), seconds)
    stored = pd.DataFrame({PREDICTION: predictions})
    id_column, target = settings.data.id_column, settings.data.target
    if id_column and id_column in frame.columns:
        stored.insert(0, id_column, frame[id_column].to_numpy())
    if probabilities is not None and model.classes is not None:
        for index, name in enumerate(labels(np.asarray(model.classes, dtype=object))):
            stored[f"p:{name}"] = probabilities[:, index]
    stored[TRAINED_ON] = trained_on(settings, version, frame)
    if target in frame.columns:
        stored[TRUTH] = _truth(frame[target], classifier)
    write_rows(stored, predictions_path(settings, batch_id, version))
    if reference is None:
        result.notes.append(
            f"version {version} has no out-of-sample reference (trained before one was kept): "
            "its performance is measured, not judged or estimated"
        )
    else:
        if classifier and settings.monitoring.estimate and probabilities is not None:
            result.estimated = _estimate(
                settings, reference, probabilities, predictions, result.notes
            )
        profile = prediction_profile(
            reference,
            settings.drift,
            classifier,
            settings.storage.home / "performance" / f"predictions-v{version}.npz",
        )
        result.prediction_drift = prediction_drift(profile, predictions, settings.drift, classifier)
    result.realized = realized_of(settings, stored, reference)
    result.attribution_drift = attribution_drift(settings, version, model, frame, result.notes)
    store_check(settings, engine, result, BATCH, batch_id=batch_id, source=BATCH)
    return result


def assess_production(
    settings: Settings,
    engine: sa.Engine,
    batch_id: int,
    frame: pd.DataFrame,
    version: str,
    model: Any | None = None,
) -> dict[str, Any]:
    """:func:`assess_batch` with the version loaded from the registry (unless given), then the
    day of the batch checked again; a failure is reported in the result, never raised, so the
    drift check it accompanies is stored whatever happens to the model."""
    from driftloop.scoring.model import load_version

    try:
        started = time.perf_counter()
        if model is None:
            model = load_version(settings, version)
        load_seconds = time.perf_counter() - started
        result = assess_batch(settings, engine, batch_id, frame, version, model)
        with session_scope(engine) as session:
            batch_time = session.get(Batch, batch_id).batch_time
        day = check_day(settings, engine, version, batch_time.date())
    except Exception as exc:  # reported with the drift check; the drift verdict stands
        log.exception("performance of version %s on batch %s failed", version, batch_id)
        return {"model_version": version, "error": f"{type(exc).__name__}: {exc}"}
    return {
        **result.to_dict(),
        "model_load_seconds": load_seconds,
        "day": {"day": batch_time.date().isoformat(), **day.to_dict()},
    }


def realized_of(
    settings: Settings, stored: pd.DataFrame, reference: ReferencePredictions | None
) -> Realized | None:
    """The realized metrics of kept predictions that have a truth, leaving out trained rows."""
    if TRUTH not in stored.columns or not stored[TRUTH].notna().any():
        return None
    task = task_of(settings)
    have = stored[stored[TRUTH].notna()]
    kept = have[~have[TRAINED_ON].astype(bool)]
    labelled = pd.DataFrame(
        {"prediction": kept[PREDICTION].to_numpy(), "truth": kept[TRUTH].to_numpy()}
    )
    return measure(
        labelled,
        task.report_metrics,
        task.default_metric,
        None if reference is None else reference.labelled(),
        settings.monitoring,
        excluded_rows=len(have) - len(kept),
    )


def _estimate(
    settings: Settings,
    reference: ReferencePredictions,
    probabilities: np.ndarray,
    predictions: np.ndarray,
    notes: list[str],
) -> Estimated | None:
    if reference.probabilities is None:
        notes.append("the version's reference has no probabilities: no estimate")
        return None
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    return estimate_performance(
        _calibrator(reference), probabilities, accuracy, settings.monitoring, predictions
    )


def _calibrator(reference: ReferencePredictions) -> Calibrator:
    return Calibrator(reference)


def trained_on(settings: Settings, version: str, frame: pd.DataFrame) -> np.ndarray:
    """Per row: whether the version's training rows hold the same inputs (left out of its
    realized metrics, which would flatter it). Unknown training data: nothing left out."""
    features = settings.feature_columns
    seen = _training_keys(
        settings.mlflow_tracking_uri, settings.model.name, version, tuple(features)
    )
    if seen is None:
        return np.zeros(len(frame), dtype=bool)
    return np.isin(comparable_row_keys(frame, features), seen)


@functools.lru_cache(maxsize=8)
def _training_keys(
    tracking_uri: str, name: str, version: str, features: tuple[str, ...]
) -> np.ndarray | None:
    from driftloop import registry
    from driftloop.stages.tracking import logged_training_data

    try:
        run_id = registry.get(registry.reader(tracking_uri), name, version).run_id
        training = logged_training_data(run_id, tracking_uri)
    except Exception as exc:  # a version logged without its training rows
        log.info("training rows of version %s unavailable (%s): none left out", version, exc)
        return None
    return comparable_row_keys(training, list(features))


def _truth(values: pd.Series, classifier: bool) -> pd.Series:
    present = values.notna()
    if classifier:
        out = pd.Series(None, index=values.index, dtype=object)
        out[present] = labels(values[present])
        return out
    return pd.to_numeric(values, errors="coerce")


# --- checks, days and the decay event --------------------------------------------------------


def store_check(
    settings: Settings,
    engine: sa.Engine,
    result: BatchPerformance,
    scope: str,
    *,
    batch_id: int | None = None,
    day: str | None = None,
    source: str,
) -> None:
    realized, estimated = result.realized, result.estimated
    test = realized.test if realized else None
    decision = task_of(settings).default_metric.name
    main = realized.metrics.get(decision) if realized else None
    with session_scope(engine) as session:
        previous = session.scalar(
            sa.select(PerformanceCheck.decayed)
            .where(
                PerformanceCheck.model_name == settings.model.name,
                PerformanceCheck.model_version == result.model_version,
                PerformanceCheck.scope == scope,
                PerformanceCheck.value.is_not(None),
            )
            .order_by(PerformanceCheck.id.desc())
            .limit(1)
        )
        decayed = bool(realized and realized.decayed)
        result.new_decay = decayed and not previous
        row = PerformanceCheck(
            model_name=settings.model.name,
            model_version=result.model_version,
            scope=scope,
            batch_id=batch_id,
            day=day,
            source=source,
            rows=realized.rows if realized else 0,
            excluded_rows=realized.excluded_rows if realized else 0,
            metric=decision,
            value=main.value if main else None,
            low=main.low if main else None,
            high=main.high if main else None,
            reference_value=test.reference if test else None,
            reference_rows=test.reference_rows if test else None,
            p_value=test.p_value if test else None,
            decayed=decayed,
            announced=not result.new_decay,  # only a new decay waits to be announced
            estimated_value=estimated.metrics["accuracy"].value if estimated else None,
            estimated_low=estimated.metrics["accuracy"].low if estimated else None,
            estimated_high=estimated.metrics["accuracy"].high if estimated else None,
            estimated_drop=bool(estimated and estimated.dropped),
            prediction_drift=(
                None
                if result.prediction_drift is None
                else bool(result.prediction_drift["drifted"])
            ),
            details=result.to_dict(),
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        result.check_id = row.id
    where = f"batch {batch_id}" if batch_id is not None else f"day {day}"
    if result.new_decay:
        alerts.send(
            settings,
            "performance_decay",
            f"Production v{result.model_version} decayed on {where}: {realized.reason}",
            result.to_dict(),
        )
    if estimated is not None and estimated.dropped:
        alerts.send(
            settings,
            "performance_estimated_drop",
            f"Production v{result.model_version} on {where}: {estimated.reason}; labels will tell",
            result.to_dict(),
        )


def check_day(settings: Settings, engine: sa.Engine, version: str, day: date) -> BatchPerformance:
    """The version's realized metrics over one UTC day: the kept predictions of that day's
    batches that have a truth (inline or late labels) and its records with ``/feedback``."""
    classifier = task_of(settings).categorical_target
    parts = [kept_rows_of_day(settings, engine, version, day, classifier)]
    parts.append(feedback_rows(settings, engine, version, day))
    stored = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=[PREDICTION, TRUTH, TRAINED_ON])
    )
    result = BatchPerformance(-1, version, len(stored), 0.0)
    result.realized = realized_of(settings, stored, load_reference(settings, engine, version))
    store_check(settings, engine, result, DAY, day=day.isoformat(), source=DAY)
    return result


def take_decay(settings: Settings, engine: sa.Engine) -> dict[str, Any] | None:
    """The newest decay not yet announced, marked announced (with any older ones): what a DAG
    emits as ``driftloop://decay``; None when there is nothing to announce."""
    with session_scope(engine) as session:
        waiting = session.scalars(
            sa.select(PerformanceCheck)
            .where(
                PerformanceCheck.model_name == settings.model.name,
                PerformanceCheck.decayed.is_(True),
                PerformanceCheck.announced.is_(False),
            )
            .order_by(PerformanceCheck.id)
        ).all()
        if not waiting:
            return None
        for row in waiting:
            row.announced = True
        newest = waiting[-1]
        return {
            "model_version": newest.model_version,
            "performance_check_id": newest.id,
            "scope": newest.scope,
            "batch_id": newest.batch_id,
            "day": newest.day,
            "metric": newest.metric,
            "reference": newest.reference_value,
            "current": newest.value,
            "p_value": newest.p_value,
        }


def day_of(moment: datetime) -> date:
    return moment.date()
