"""SHAP explanations per original feature: the known answer (only ``signal`` matters) for each
kind of model, one-hot columns summed back to their feature, exact values that add up to the
model's margin, and the bounded fallback for a model SHAP cannot explain exactly."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.scoring.explain import APPROXIMATE, EXACT, explain, owner
from tests.support.performance import FEATURES, synthetic


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return synthetic(rng, 1200), synthetic(rng, 200)


def _pipeline(model):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    prepare = ColumnTransformer(
        [
            ("numbers", SimpleImputer(), ["signal", "noise", "gappy"]),
            ("colour", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["colour"]),
        ]
    )
    return make_pipeline(prepare, model)


def _models():
    import lightgbm
    import xgboost
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    return {
        "xgboost": (xgboost.XGBClassifier(n_estimators=30, max_depth=3), EXACT),
        "lightgbm": (lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), EXACT),
        "forest": (RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0), EXACT),
        "logistic": (LogisticRegression(), EXACT),
        "knn": (KNeighborsClassifier(25), APPROXIMATE),
    }


@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "forest", "logistic", "knn"])
def test_only_the_signal_matters_whatever_the_model(data, name):
    train, records = data
    model, quality = _models()[name]
    pipeline = _pipeline(model).fit(train[FEATURES], train["y"])
    attributions = explain(pipeline, records.head(60), FEATURES, background=train)
    assert attributions.quality == quality and attributions.values.shape == (60, 4)
    importance = attributions.global_importance()
    assert list(importance) == ["signal", *list(importance)[1:]]
    assert importance["signal"] > 3 * max(importance[f] for f in ("noise", "colour", "gappy"))
    # the predicted class's values point toward it: signal pushes where the prediction went
    assert np.mean(attributions.values[:, 0] > 0) > 0.8


def test_xgboost_values_add_up_to_its_margin(data):
    import xgboost

    train, records = data
    pipeline = _pipeline(xgboost.XGBClassifier(n_estimators=30, max_depth=3))
    pipeline.fit(train[FEATURES], train["y"])
    attributions = explain(pipeline, records, FEATURES)
    margin = pipeline[-1].predict(pipeline[:-1].transform(records[FEATURES]), output_margin=True)
    predicted = pipeline.predict(records[FEATURES])
    signed = np.where(predicted == 1, 1.0, -1.0)
    base = margin - signed * attributions.values.sum(axis=1)  # the same bias for every record
    assert np.ptp(base) == pytest.approx(0.0, abs=1e-4)


def test_one_hot_columns_belong_to_their_feature():
    features = ["colour", "colour_depth", "x"]
    assert owner("colour__colour_red", features) == "colour"
    assert owner("colour_depth", features) == "colour_depth"
    assert owner("numbers__x", features) == "x"
    assert owner("pca_1", features) is None
