"""A version's out-of-sample predictions: the yardstick of its performance in production.

In-sample predictions flatter a model (a forest memorises its training rows), so every
judgement compares against predictions on rows the finalized model never fitted:
cross-validated predictions over its training rows (``monitoring.reference_folds`` folds, each
fold predicted by a clone fitted on the others; rows with the same inputs in the same fold).

Not the gate holdout, though it is out of sample: it is the very sample on which the version
won its gate, so its score is biased upward (the winner's curse), and a healthy version then
looks decayed against it (3.6% false alarms at ``monitoring.alpha`` 1%). The cross-validated
predictions' noise is independent of the gate's choice.
The same predictions are the calibration set of the estimated performance and the reference of
prediction drift.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import comparable_row_keys
from driftloop.performance.intervals import Estimate, estimate
from driftloop.storage import PerformanceReferenceRecord, session_scope
from driftloop.task import labels, task_of

HOLDOUT, CROSS_VALIDATION = "gate holdout", "cross-validation"


@dataclass(frozen=True)
class ReferencePredictions:
    """Out-of-sample predictions of one version with the truth: ``probabilities`` (rows x
    classes, in the order of ``classes``) for classifiers that give them."""

    source: str
    truth: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: list[str] | None = None

    @property
    def rows(self) -> int:
        return len(self.truth)

    def labelled(self) -> pd.DataFrame:
        """Columns ``prediction`` and ``truth``, as the interval functions take them."""
        return pd.DataFrame({"prediction": self.predictions, "truth": self.truth})

    def metrics(self, names: tuple[str, ...], confidence: float) -> dict[str, Estimate]:
        labelled = self.labelled()
        return {name: estimate(name, labelled, confidence) for name in names}

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "truth": _stored(self.truth),
            "predictions": _stored(self.predictions),
        }
        if self.probabilities is not None:
            arrays["probabilities"] = np.asarray(self.probabilities, dtype=float)
        meta = {"source": self.source, "classes": self.classes}
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(path.name + ".part")
        staged.write_bytes(buffer.getvalue())
        staged.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReferencePredictions:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes().decode())
            probabilities = stored.get("probabilities")
            return cls(
                meta["source"],
                _loaded(stored["truth"]),
                _loaded(stored["predictions"]),
                probabilities,
                meta["classes"],
            )


def _stored(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    return values.astype(str) if values.dtype == object else values


def _loaded(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype.kind == "U" else values


def predict_frame(
    pipeline: Any, features: pd.DataFrame, classes: list[Any] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (class labels as text for a classifier) and probabilities in ``classes``
    order. The prediction is ``predict``'s, not the most probable class: an estimator may
    decide otherwise (an ordinal forest answers the expected grade)."""
    predicted = np.asarray(pipeline.predict(features))
    if classes is not None and hasattr(pipeline, "predict_proba"):
        probabilities = np.asarray(pipeline.predict_proba(features), dtype=float)
        return labels(predicted), probabilities
    return (labels(predicted) if classes is not None else predicted.astype(float)), None


def out_of_sample(
    pipeline: Any,
    train_frame: pd.DataFrame,
    holdout: pd.DataFrame | None,
    settings: Settings,
) -> ReferencePredictions:
    """The version's out-of-sample predictions, cross-validated over its training rows.
    ``holdout`` (the gate holdout) is accepted and left out on purpose: it selected the
    version (see the module)."""
    from driftloop.scoring.model import class_labels

    del holdout  # the selection sample: a reference on it carries the winner's curse
    classifier = task_of(settings).categorical_target
    classes = class_labels(pipeline) if classifier else None
    return _cross_validated(pipeline, train_frame, settings, classes)


def _cross_validated(
    pipeline: Any, frame: pd.DataFrame, settings: Settings, classes: list[Any] | None
) -> ReferencePredictions:
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    from driftloop.scoring.model import class_labels

    features, target = settings.feature_columns, settings.data.target
    frame = frame.dropna(subset=[target])
    classifier = classes is not None
    names = _names(classes)
    if classifier:  # the rows the version learned from: training leaves out too rare a class
        frame = frame[np.isin(labels(frame[target]), names)]
    frame = frame.reset_index(drop=True)
    folds, seed = settings.monitoring.reference_folds, settings.training.seed
    truth = _truth(frame[target], classifier)
    # rows with the same inputs stay in one fold: a copy on both sides (white wine holds
    # about 900) would be predicted from its twin and flatter the reference
    groups = comparable_row_keys(frame, features)
    splitter = (
        StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        if classifier
        else GroupKFold(folds)
    )
    predictions = np.empty(len(frame), dtype=object if classifier else float)
    probabilities = np.zeros((len(frame), len(classes))) if classifier else None
    for fit_rows, predict_rows in splitter.split(frame, truth, groups):
        model = clone(pipeline).fit(frame.loc[fit_rows, features], frame.loc[fit_rows, target])
        fold_classes = class_labels(model) if classifier else None
        predicted, fold_probabilities = predict_frame(
            model, frame.loc[predict_rows, features], fold_classes
        )
        predictions[predict_rows] = predicted
        if probabilities is not None and fold_probabilities is not None:
            # a fold may miss a rare class: its columns go where the version's classes are
            columns = [names.index(c) for c in _names(fold_classes)]
            probabilities[np.ix_(predict_rows, columns)] = fold_probabilities
    usable = probabilities if probabilities is not None and probabilities.any() else None
    return ReferencePredictions(CROSS_VALIDATION, truth, predictions, usable, names)


def _truth(values: pd.Series, classifier: bool) -> np.ndarray:
    return labels(values) if classifier else values.to_numpy(dtype=float)


def _names(classes: list[Any] | None) -> list[str] | None:
    return None if classes is None else [str(c) for c in labels(np.asarray(classes, dtype=object))]


# --- stored ------------------------------------------------------------------------------


def load_reference(
    settings: Settings, engine: sa.Engine, version: str
) -> ReferencePredictions | None:
    """The newest stored reference of ``version``; None for versions trained before one was
    kept (their performance is measured and shown, but not judged)."""
    with session_scope(engine) as session:
        path = session.scalar(
            sa.select(PerformanceReferenceRecord.path)
            .where(
                PerformanceReferenceRecord.model_name == settings.model.name,
                PerformanceReferenceRecord.model_version == version,
            )
            .order_by(PerformanceReferenceRecord.id.desc())
            .limit(1)
        )
    if path is None or not Path(path).is_file():
        return None
    return ReferencePredictions.load(Path(path))
