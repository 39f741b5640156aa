"""The models AutoML compares: PyCaret's own ids, plus driftloop's, resolved to estimators.

Why driftloop adds models: many tabular targets that look like classes are ordered grades
(wine quality 3 to 9, ratings, severity levels). A forest's vote shares are noisy, and taking
the most voted grade ignores that a vote for 5 is also evidence for "about 5". Deciding on the
expected grade position (the vote shares' mean, rounded) uses that order, at the same
prediction cost as the plain forest (measured in docs/benchmarks-retrain.md). ExtraTrees and
Random Forest each get such a variant; they are more candidates, not a rule: PyCaret's
cross-validation decides whether it wins on the data at hand.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from driftloop.task import TaskKind

log = logging.getLogger(__name__)


class OrdinalDecision:
    """A forest mixin whose prediction is the class at the rounded expected class position.

    The classes are taken in sorted order (PyCaret encodes labels in sorted order, so grade
    3 is position 0, grade 4 position 1, ...), equally spaced. ``predict_proba`` is the
    forest's own, so SHAP's TreeExplainer and probability-based monitoring see a plain forest.
    """

    classes_: np.ndarray

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.class_index(self.predict_proba(X))]  # type: ignore[attr-defined]

    @staticmethod
    def class_index(probabilities: np.ndarray) -> np.ndarray:
        """The position of the predicted class for each row of ``predict_proba``'s output."""
        positions = np.arange(probabilities.shape[1])
        expected = probabilities @ positions
        return np.clip(np.rint(expected), 0, len(positions) - 1).astype(int)


class OrdinalExtraTrees(OrdinalDecision, ExtraTreesClassifier):
    """ExtraTrees deciding on the expected grade."""


class OrdinalRandomForest(OrdinalDecision, RandomForestClassifier):
    """Random Forest deciding on the expected grade."""


@dataclass(frozen=True)
class OwnModel:
    """One of driftloop's model ids: its estimator, listed name, and whether it needs class
    labels that are ordered numbers."""

    estimator: type
    name: str
    needs_ordered_labels: bool = True

    def build(self, seed: int) -> Any:
        # PyCaret's own forests have 100 trees; same size, same serving cost
        return self.estimator(n_estimators=100, random_state=seed, n_jobs=1)


OWN_MODELS: dict[str, OwnModel] = {
    "et_ordinal": OwnModel(OrdinalExtraTrees, "Ordinal Extra Trees"),
    "rf_ordinal": OwnModel(OrdinalRandomForest, "Ordinal Random Forest"),
}
NAMES: dict[type, str] = {model.estimator: model.name for model in OWN_MODELS.values()}


def own_model_names(candidates: Sequence[Any]) -> dict[str, str]:
    """Names for compare_models' table rows of driftloop's own models. With any estimator in
    ``include``, PyCaret indexes every row by its position and names a subclass after its
    parent (an ordinal forest would be listed as a second "Extra Trees Classifier")."""
    return {
        str(position): NAMES[type(candidate)]
        for position, candidate in enumerate(candidates)
        if type(candidate) in NAMES
    }


def ordered_labels(target: pd.Series) -> bool:
    """Are the labels numbers (so their sorted order means something)?"""
    values = target.dropna()
    return bool(len(values)) and pd.api.types.is_numeric_dtype(values)


def resolve(models: Sequence[str], target: pd.Series, task: TaskKind, seed: int) -> list[Any]:
    """PyCaret's ``include`` list: PyCaret ids as they are, driftloop's ids as estimators.

    A driftloop model that does not fit the task (regression, or class labels that are not
    numbers) is left out with a log line, so one model list serves every data set.
    """
    resolved: list[Any] = []
    for model in models:
        if model not in OWN_MODELS:
            resolved.append(model)
            continue
        own = OWN_MODELS[model]
        if not task.categorical_target or (own.needs_ordered_labels and not ordered_labels(target)):
            log.info("model %s left out: it needs class labels that are ordered numbers", model)
            continue
        resolved.append(own.build(seed))
    return resolved
