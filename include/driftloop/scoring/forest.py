"""A forest's class probabilities for a few rows at a time, without scikit-learn's per-tree
overhead.

``ForestClassifier.predict_proba`` hands each of its trees to joblib, even with ``n_jobs=1``:
each tree call sets and resets scikit-learn's configuration and validates the input again.
For the handful of rows of a served micro-batch that overhead is most of the forest's cost
(about 3 ms of a random forest's 100 trees against about 1 ms for the trees themselves). Here
the input is validated once, as the forest does it, and the trees' own ``tree_.predict`` is
summed in the forest's order and divided as scikit-learn does, so the result is the same
array. :func:`driftloop.scoring.model.predictor` still uses it only when it gives exactly
``pipeline.predict_proba``'s answer on the version's input example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def forest_probabilities(pipeline: Any) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """``pipeline.predict_proba`` for a PyCaret pipeline ending in scikit-learn's own
    single-output forest classifier (random forest, extra trees); None for anything else."""
    from sklearn.ensemble._forest import ForestClassifier

    steps = getattr(pipeline, "steps", None)
    transform = getattr(type(pipeline), "_memory_full_transform", None)  # PyCaret's pipeline
    if not steps or transform is None:
        return None
    forest = steps[-1][1]
    if (
        not isinstance(forest, ForestClassifier)
        or type(forest).predict_proba is not ForestClassifier.predict_proba  # its own rule
        or getattr(forest, "n_outputs_", None) != 1
        or not getattr(forest, "estimators_", None)
    ):
        return None
    trees = [estimator.tree_ for estimator in forest.estimators_]
    classes = int(forest.n_classes_)

    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        features, _ = pipeline._memory_full_transform(pipeline, frame, None, with_final=False)
        features = forest._validate_X_predict(features)
        total = np.zeros((features.shape[0], classes), dtype=np.float64)
        for tree in trees:  # the forest's order: the same sums, bit for bit
            total += tree.predict(features)[:, :classes]
        total /= len(trees)
        return total

    return predict_proba
