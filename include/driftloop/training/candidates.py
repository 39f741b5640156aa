"""The models AutoML compares: PyCaret's own ids, plus driftloop's, resolved to estimators.

Why driftloop adds a model: many tabular targets that look like classes are ordered grades
(wine quality 3 to 9, ratings, severity levels). A forest's vote shares are noisy, and taking
the most voted grade ignores that a vote for 5 is also evidence for "about 5". Deciding on the
expected grade position (the vote shares' mean, rounded) uses that order, at the same
prediction cost as the plain forest (measured in docs/benchmarks-retrain.md). It is one more
candidate, not a rule: PyCaret's cross-validation decides whether it wins on the data at hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier

from driftloop.task import TaskKind

log = logging.getLogger(__name__)


class OrdinalExtraTrees(ExtraTreesClassifier):
    """ExtraTrees whose prediction is the class at the rounded expected class position.

    The classes are taken in sorted order (PyCaret encodes labels in sorted order, so grade
    3 is position 0, grade 4 position 1, ...), equally spaced. ``predict_proba`` is the
    forest's own, so SHAP's TreeExplainer and probability-based monitoring see a plain forest.
    """

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.class_index(self.predict_proba(X))]

    @staticmethod
    def class_index(probabilities: np.ndarray) -> np.ndarray:
        """The position of the predicted class for each row of ``predict_proba``'s output."""
        positions = np.arange(probabilities.shape[1])
        expected = probabilities @ positions
        return np.clip(np.rint(expected), 0, len(positions) - 1).astype(int)


def _ordinal_extra_trees(seed: int) -> Any:
    return OrdinalExtraTrees(n_estimators=100, random_state=seed, n_jobs=1)


NAMES: dict[type, str] = {OrdinalExtraTrees: "Ordinal Extra Trees"}

# driftloop's own model ids: (builder, whether the target must be ordered numbers).
OWN_MODELS: dict[str, tuple[Callable[[int], Any], bool]] = {
    "et_ordinal": (_ordinal_extra_trees, True),
}


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
        build, needs_order = OWN_MODELS[model]
        if not task.categorical_target or (needs_order and not ordered_labels(target)):
            log.info("model %s left out: it needs class labels that are ordered numbers", model)
            continue
        resolved.append(build(seed))
    return resolved
