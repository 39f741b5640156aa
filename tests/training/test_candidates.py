"""driftloop's own AutoML candidate: an ExtraTrees that decides on the expected grade.

Known answers for the decision rule, the cases where the candidate is left out, a seeded
property (on ordered grades it is more accurate than the plain forest's most voted class, at
the same trees), and the serving shortcut (one ``predict_proba`` pass) following its rule.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.scoring.model import predictor
from driftloop.task import task_kind
from driftloop.training.candidates import (
    OrdinalExtraTrees,
    OrdinalRandomForest,
    own_model_names,
    resolve,
)


def test_the_decision_is_the_rounded_expected_position():
    probabilities = np.array(
        [
            [0.4, 0.0, 0.6],  # most voted: position 2; expected 1.2 -> 1
            [0.5, 0.5, 0.0],  # expected 0.5 rounds to even: 0
            [0.0, 0.2, 0.8],  # expected 1.8 -> 2
            [1.0, 0.0, 0.0],
        ]
    )
    assert OrdinalExtraTrees.class_index(probabilities).tolist() == [1, 0, 2, 0]


def test_predict_returns_labels_at_that_position():
    X = np.arange(30, dtype=float).reshape(-1, 1)
    y = np.repeat([3, 4, 5], 10)
    model = OrdinalExtraTrees(n_estimators=20, random_state=0, n_jobs=1).fit(X, y)
    expected = model.classes_[OrdinalExtraTrees.class_index(model.predict_proba(X))]
    assert model.predict(X).tolist() == expected.tolist()
    assert set(model.predict(X)) <= {3, 4, 5}


def test_the_candidate_is_left_out_where_it_does_not_fit(caplog):
    numbers = pd.Series([3, 4, 5, 6])
    words = pd.Series(["low", "mid", "high", "mid"])
    classification, regression = task_kind("classification"), task_kind("regression")
    with caplog.at_level(logging.INFO):
        assert resolve(["et_ordinal", "rf"], words, classification, 0) == ["rf"]
        assert resolve(["et_ordinal", "lr"], numbers, regression, 0) == ["lr"]
    assert caplog.text.count("model et_ordinal left out") == 2
    (built, plain, forest) = resolve(["et_ordinal", "et", "rf_ordinal"], numbers, classification, 7)
    assert isinstance(built, OrdinalExtraTrees) and plain == "et"
    assert isinstance(forest, OrdinalRandomForest)
    for model in (built, forest):
        params = model.get_params()
        assert (params["n_jobs"], params["random_state"], params["n_estimators"]) == (1, 7, 100)
    # PyCaret indexes rows by position once an estimator is included, and would name the
    # subclass after its parent
    names = own_model_names([built, plain, forest])
    assert names == {"0": "Ordinal Extra Trees", "2": "Ordinal Random Forest"}


def _grades(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seven ordered grades from a smooth score of four features, with noise."""
    features = rng.normal(size=(rows, 4))
    score = features[:, 0] + 0.7 * features[:, 1] - 0.5 * features[:, 2] * features[:, 3]
    grades = np.clip(np.rint(1.2 * score + rng.normal(scale=0.9, size=rows)), -3, 3) + 5
    return features, grades.astype(int)


@pytest.mark.parametrize(
    ("forest", "ordinal_forest"),
    [(ExtraTreesClassifier, OrdinalExtraTrees), (RandomForestClassifier, OrdinalRandomForest)],
)
def test_on_ordered_grades_it_beats_the_most_voted_class(forest, ordinal_forest):
    """Seeded: 6 training sets of 600 rows, each scored on 3,000 new rows, same 100 trees."""
    gains = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        X, y = _grades(600, rng)
        X_new, y_new = _grades(3000, rng)
        plain = forest(100, random_state=seed, n_jobs=1).fit(X, y)
        ordinal = ordinal_forest(n_estimators=100, random_state=seed, n_jobs=1).fit(X, y)
        gains.append(
            np.mean(ordinal.predict(X_new) == y_new) - np.mean(plain.predict(X_new) == y_new)
        )
    assert min(gains) > 0, gains
    assert np.mean(gains) > 0.02, gains


def test_serving_takes_one_pass_and_follows_the_rule():
    rng = np.random.default_rng(0)
    X, y = _grades(400, rng)
    frame = pd.DataFrame(X, columns=list("abcd"))
    pipeline = make_pipeline(StandardScaler(), OrdinalExtraTrees(n_estimators=30, random_state=0))
    pipeline.fit(frame, y)
    classes = pipeline.classes_.tolist()
    predict = predictor(pipeline, classes, frame.head(1))
    assert predict.__name__ == "one_pass"  # the shortcut agreed with predict on the example
    new = pd.DataFrame(_grades(500, rng)[0], columns=list("abcd"))  # unlike training rows,
    predictions, probabilities = predict(new)  # new rows get split votes
    assert predictions.tolist() == pipeline.predict(new).tolist()
    assert np.allclose(probabilities, pipeline.predict_proba(new))
    # where the rule and the most probable class differ, the answer is the rule's
    assert (predictions != np.asarray(classes)[probabilities.argmax(axis=1)]).any()


@pytest.mark.timeout(300)
def test_automl_compares_it_and_names_it(tmp_path, monkeypatch):
    """Real PyCaret: the candidate is compared beside PyCaret's ExtraTrees and listed by its
    own name; with text labels it is left out and training still runs."""
    from driftloop.settings_loader import load_settings
    from driftloop.training.automl import train

    for name in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # PyCaret may write ./logs.log
    rng = np.random.default_rng(1)
    X, y = _grades(500, rng)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(grade=y)
    frame = frame[frame.grade.map(frame.grade.value_counts()) >= 6]
    (tmp_path / "data.csv").write_text(frame.to_csv(index=False))
    config = {
        "data": {"path": str(tmp_path / "data.csv"), "separator": ",", "target": "grade",
                 "task": "classification", "features": list("abcd"), "bounds": {}},
        "model": {"name": "grades"},
        "storage": {"home": str(tmp_path / "home")},
        "training": {"models": ["et_ordinal", "et"], "folds": 3, "budget_minutes": 1},
    }  # fmt: skip
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(tmp_path / "driftloop.yaml")
    trained = train(frame, settings)
    assert set(trained.compare_table["Model"]) == {"Ordinal Extra Trees", "Extra Trees Classifier"}
    words = frame.assign(grade=frame.grade.map(lambda g: f"grade {g}"))
    trained = train(words, settings)
    assert list(trained.compare_table["Model"]) == ["Extra Trees Classifier"]


def test_a_model_list_that_cannot_learn_the_task_is_refused_with_a_sentence(tmp_path, monkeypatch):
    """Only ordinal candidates on a regression target: a clear TrainingError before PyCaret."""
    from driftloop.settings_loader import load_settings
    from driftloop.training.automl import TrainingError, train

    for name in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(name)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"]).assign(
        y=rng.normal(size=200)
    )
    (tmp_path / "data.csv").write_text(frame.to_csv(index=False))
    config = {
        "data": {"path": str(tmp_path / "data.csv"), "separator": ",", "target": "y",
                 "task": "regression", "features": ["a", "b"], "bounds": {}},
        "model": {"name": "numbers"},
        "storage": {"home": str(tmp_path / "home")},
        "training": {"models": ["et_ordinal", "rf_ordinal"], "folds": 3},
    }  # fmt: skip
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(tmp_path / "driftloop.yaml")
    with pytest.raises(TrainingError, match=r"none of the models .* can learn a regression task"):
        train(frame, settings)
