"""A registered version as something that predicts: its pipeline, the feature schema requests
and files are checked against, its class labels, and one function from a frame to answers.

The prediction server wraps this in a micro-batcher; batch scoring calls it chunk by chunk.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop import registry
from driftloop.config import Settings
from driftloop.scoring.forest import forest_probabilities

log = logging.getLogger(__name__)

_NUMERIC_TYPES = {"double", "float", "long", "integer"}

# predictions (one per row) and, for classifiers, probabilities (rows x classes)
Answers = tuple[np.ndarray, np.ndarray | None]
Predict = Callable[[pd.DataFrame], Answers]


@dataclass(frozen=True)
class FeatureSchema:
    """What a record must hold: names, whether each is numeric, and which ones the version can
    take missing (null, absent or an empty cell)."""

    names: tuple[str, ...]
    numeric: frozenset[str]
    nullable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class VersionPipeline:
    """One registered version, loaded: ``predict`` gives predictions and, for classifiers,
    probabilities in the order of ``classes``."""

    version: str
    pipeline: Any
    schema: FeatureSchema
    classes: list[Any] | None
    predict: Predict
    example: pd.DataFrame | None = None  # the logged input example, if any


def load_version(settings: Settings, version: str) -> VersionPipeline:
    """Download ``version`` from the registry and read its schema from the logged signature
    (the configured features when a version was logged without one)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import Model

    uri = f"models:/{settings.model.name}/{version}"
    with tempfile.TemporaryDirectory(prefix="driftloop-model-") as folder:
        local = mlflow.artifacts.download_artifacts(uri, dst_path=folder)
        pipeline = mlflow.sklearn.load_model(local)
        info = Model.load(local)
        example = info.load_input_example(local)
    if info.signature is not None:
        columns = info.signature.inputs.to_dict()
        names = tuple(c["name"] for c in columns)
        numeric = frozenset(c["name"] for c in columns if c["type"] in _NUMERIC_TYPES)
    else:
        names = tuple(settings.feature_columns)
        numeric = frozenset(set(names) - set(settings.data.categorical_features))
    # recorded at training; a version registered without it: only the configured ones
    recorded = (info.metadata or {}).get(registry.NULLABLE_FEATURES) or []
    nullable = (set(recorded) | set(settings.data.nullable_features)) & set(names)
    classes = class_labels(pipeline)
    example = example if isinstance(example, pd.DataFrame) else None
    return VersionPipeline(
        version,
        pipeline,
        FeatureSchema(names, numeric, frozenset(nullable)),
        classes,
        predictor(pipeline, classes, example),
        example,
    )


def class_labels(pipeline: Any) -> list[Any] | None:
    """Class labels in the order of ``predict_proba`` columns (PyCaret encodes labels)."""
    if not hasattr(pipeline, "predict_proba"):
        return None
    steps = dict(getattr(pipeline, "steps", []))
    encoder = getattr(steps.get("label_encoding"), "transformer", None)
    labels = getattr(encoder, "classes_", None)
    if labels is None:
        labels = getattr(pipeline, "classes_", None)
    return None if labels is None else _plain(labels)


def _plain(values: Any) -> list[Any]:
    return [x.item() if hasattr(x, "item") else x for x in values]


def _decision_rule(pipeline: Any) -> Any:
    """How the final estimator turns probabilities into a class position: its own
    ``class_index`` when it has one (an ordinal forest decides on the expected grade), else the
    most probable class."""
    steps = getattr(pipeline, "steps", None)
    final = steps[-1][1] if steps else pipeline
    rule = getattr(final, "class_index", None)
    return rule if callable(rule) else (lambda probabilities: probabilities.argmax(axis=1))


def predictor(pipeline: Any, classes: list[Any] | None, example: pd.DataFrame | None) -> Predict:
    """A function from a frame to (predictions, probabilities) as arrays.

    A classifier's prediction follows from its probabilities (the most probable class, or the
    final estimator's own ``class_index``), so one ``predict_proba`` pass gives both (a second
    pass would double the cost of every batch). That shortcut is taken only when
    it agrees with ``predict`` on the version's input example; an estimator with its own
    decision threshold keeps two passes.
    """

    proba = _probabilities(pipeline, example) if classes is not None else None

    def two_passes(frame: pd.DataFrame) -> Answers:
        predictions = np.asarray(pipeline.predict(frame))
        probabilities = proba(frame) if proba is not None else None
        return predictions, probabilities

    if proba is None or example is None or not len(example):
        return two_passes
    labels = np.asarray(classes, dtype=object)
    decide = _decision_rule(pipeline)

    def one_pass(frame: pd.DataFrame) -> Answers:
        probabilities = proba(frame)
        return labels[decide(probabilities)], probabilities

    try:
        agrees = _plain(one_pass(example)[0]) == _plain(two_passes(example)[0])
    except Exception as exc:  # an odd example must not stop the model from serving
        log.warning("one-pass prediction check failed, using two passes: %s", exc)
        agrees = False
    return one_pass if agrees else two_passes


def _probabilities(pipeline: Any, example: pd.DataFrame | None) -> Callable[[Any], np.ndarray]:
    """``pipeline.predict_proba``, or the same without scikit-learn's per-tree overhead for a
    forest (:mod:`driftloop.scoring.forest`) when it gives exactly the same array on the
    version's input example (without an example, the pipeline's own)."""
    fast = forest_probabilities(pipeline)
    if fast is None or example is None or not len(example):
        return pipeline.predict_proba
    try:
        same = np.array_equal(fast(example), pipeline.predict_proba(example))
    except Exception as exc:  # an odd pipeline must not stop the model from serving
        log.warning("fast forest probabilities failed, using predict_proba: %s", exc)
        same = False
    return fast if same else pipeline.predict_proba


def as_lists(answers: Answers) -> tuple[list[Any], list[list[float]] | None]:
    """Answers as plain Python values, as a JSON response carries them."""
    predictions, probabilities = answers
    # class labels are plain already (``class_labels``); numbers convert in one call
    plain = predictions.tolist() if predictions.dtype != object else _plain(predictions)
    return plain, None if probabilities is None else probabilities.tolist()
