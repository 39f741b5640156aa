"""The forest's probabilities without scikit-learn's per-tree overhead: the same array, bit for
bit, as ``pipeline.predict_proba`` (random forest and extra trees, one row or many, missing
values imputed by the pipeline), and left alone where it does not apply."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pycaret.internal.pipeline import Pipeline
from pycaret.internal.preprocess.transformers import TransformerWrapper
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression

from driftloop.scoring.forest import forest_probabilities
from driftloop.scoring.model import predictor
from driftloop.training.candidates import OrdinalRandomForest


def _data(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 5)), columns=[f"x{i}" for i in range(5)])
    grade = (frame["x0"] + 0.5 * frame["x1"] + rng.normal(scale=0.5, size=rows)).round()
    return frame, grade.clip(-2, 2).astype(int)


def _pipeline(estimator) -> Pipeline:
    frame, target = _data()
    imputer = TransformerWrapper(SimpleImputer(), include=list(frame.columns))
    pipeline = Pipeline([("numerical_imputer", imputer), ("actual_estimator", estimator)])
    return pipeline.fit(frame, target)


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=40, random_state=1, n_jobs=1),
        ExtraTreesClassifier(n_estimators=40, random_state=2, n_jobs=1),
        OrdinalRandomForest(n_estimators=40, random_state=3, n_jobs=1),
    ],
    ids=["rf", "et", "ordinal-rf"],
)
def test_the_same_probabilities_as_the_pipeline_bit_for_bit(estimator):
    pipeline = _pipeline(estimator)
    fast = forest_probabilities(pipeline)
    assert fast is not None
    requests, _ = _data(200, seed=7)
    requests.iloc[3, 1] = np.nan  # imputed by the pipeline's own step
    for rows in (requests.head(1), requests.head(8), requests):
        assert np.array_equal(fast(rows), pipeline.predict_proba(rows))


def test_the_predictor_answers_as_the_pipeline_does():
    pipeline = _pipeline(RandomForestClassifier(n_estimators=30, random_state=4, n_jobs=1))
    example, _ = _data(20, seed=5)
    classes = list(pipeline.classes_)
    predictions, probabilities = predictor(pipeline, classes, example)(example)
    assert np.array_equal(probabilities, pipeline.predict_proba(example))
    assert predictions.tolist() == pipeline.predict(example).tolist()


class _OwnProbabilities(RandomForestClassifier):
    def predict_proba(self, X):
        return super().predict_proba(X) ** 2


def test_no_shortcut_for_other_models_or_a_forest_with_its_own_probabilities():
    assert forest_probabilities(_pipeline(LogisticRegression())) is None
    own = _pipeline(_OwnProbabilities(n_estimators=10, random_state=0, n_jobs=1))
    assert forest_probabilities(own) is None
    frame, target = _data()
    bare = RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1).fit(frame, target)
    assert forest_probabilities(bare) is None  # not a pipeline: predict_proba as it is
