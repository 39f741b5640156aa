"""The task kinds: metrics and their direction, label comparison, per-record outcomes, and the
allowed values the settings keep apart (they import nothing from driftloop)."""

from __future__ import annotations

import math
import typing

import numpy as np
import pandas as pd
import pytest

from driftloop import config
from driftloop.task import (
    CLASSIFICATION,
    MAE,
    REGRESSION,
    RMSE,
    TASKS,
    labels,
    metric,
    task_kind,
    task_of,
)


def test_each_task_names_its_kind_and_the_settings_allow_exactly_those():
    assert task_kind("classification") is CLASSIFICATION
    assert task_kind("regression") is REGRESSION
    allowed = typing.get_args(config.DataSettings.model_fields["task"].annotation)
    assert set(allowed) == set(TASKS)
    metrics = {name: tuple(m.name for m in kind.metrics) for name, kind in TASKS.items()}
    assert metrics == config.TASK_METRICS
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        task_kind("ranking")


def test_default_metrics_and_their_direction():
    assert CLASSIFICATION.default_metric.name == "accuracy"
    assert CLASSIFICATION.default_metric.higher_is_better
    assert REGRESSION.default_metric.name == "mae"
    assert not REGRESSION.default_metric.higher_is_better
    assert not metric("rmse").higher_is_better
    assert CLASSIFICATION.optimize == "Accuracy" and REGRESSION.optimize == "MAE"
    assert CLASSIFICATION.decision_metric(None).name == "accuracy"
    assert REGRESSION.decision_metric("rmse") is RMSE
    assert CLASSIFICATION.gate_metric("F1").name == "accuracy"
    assert REGRESSION.gate_metric(None) is MAE and REGRESSION.gate_metric("mse") is RMSE
    with pytest.raises(ValueError, match="unknown metric"):
        metric("auc")


def test_task_of_reads_the_configured_task(settings):
    assert task_of(settings) is CLASSIFICATION  # the wine quality classes


@pytest.mark.parametrize(
    ("truth", "predicted", "right"),
    [
        ([6, 7, 5], [6.0, 7.0, 6.0], [1, 1, 0]),  # integers against floats
        ([6, 7, 5], ["6", "7", "5.0"], [1, 1, 0]),  # integers against strings ("5.0" is text)
        (["a", "b", "a"], ["a", "a", "a"], [1, 0, 1]),  # text labels
        (pd.Categorical(["x", "y", "y"]), ["x", "y", "x"], [1, 1, 0]),  # a categorical column
        (pd.Series([6.0, 2.5, 7.0]), [6, 2.5, 7.5], [1, 1, 0]),  # a float column: 6.0 is 6
        ([True, False], [True, True], [1, 0]),  # booleans stay True and False
        (np.array([3, 4]), np.array([3.0, 4.0]), [1, 1]),  # numpy arrays, as predict gives
    ],
)
def test_classification_compares_labels_as_the_json_they_travelled_in(truth, predicted, right):
    outcomes = CLASSIFICATION.default_metric.outcomes(truth, predicted)
    assert outcomes.tolist() == right
    assert CLASSIFICATION.score(truth, predicted) == pytest.approx(np.mean(right))


def test_labels_of_a_column_agree_with_labels_value_by_value():
    mixed = pd.Series([6, 6.0, "6", 2.5, None, 1e20, True], dtype=object)
    assert labels(mixed).tolist() == ["6", "6", "6", "2.5", "None", "100000000000000000000", "True"]
    floats = pd.Series([6.0, -0.0, 2.5, math.nan, 1e20, -3.0])
    assert labels(floats).tolist() == ["6", "0", "2.5", "nan", "100000000000000000000", "-3"]
    assert labels(pd.Series([10**18 + 1])).tolist() == [str(10**18 + 1)]  # no float detour


def test_regression_outcomes_are_errors_and_truth_must_be_a_finite_number():
    truth, predicted = [1.0, 2.0, 4.0], [1.5, 2.0, 1.0]
    assert MAE.outcomes(truth, predicted).tolist() == [0.5, 0.0, 3.0]
    assert RMSE.outcomes(truth, predicted).tolist() == [0.25, 0.0, 9.0]
    assert MAE.aggregate(MAE.outcomes(truth, predicted)) == pytest.approx(3.5 / 3)
    assert RMSE.aggregate(RMSE.outcomes(truth, predicted)) == pytest.approx(math.sqrt(9.25 / 3))
    assert REGRESSION.score(truth, predicted) == pytest.approx(3.5 / 3)
    assert math.isnan(MAE.aggregate(np.array([])))
    stored = pd.Series([1.5, "2", True, None, "x", math.inf, 3], dtype=object)
    assert REGRESSION.usable_truth(stored).tolist() == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    ]
    assert CLASSIFICATION.usable_truth(stored).all()
    assert REGRESSION.truth_problem(2.5) is None
    assert "finite number" in REGRESSION.truth_problem(True)
    assert "finite number" in REGRESSION.truth_problem("3")
    assert CLASSIFICATION.truth_problem("a label") is None


def test_only_classification_drops_classes_too_rare_to_cross_validate():
    frame = pd.DataFrame({"x": range(9), "y": [1, 1, 1, 1, 2, 2, 2, 2, 3]})
    kept, dropped = CLASSIFICATION.training_rows(frame, "y", folds=2)
    assert dropped == ["3"] and kept["y"].tolist() == [1] * 4 + [2] * 4
    kept, dropped = REGRESSION.training_rows(frame, "y", folds=2)
    assert dropped == [] and len(kept) == 9
    assert CLASSIFICATION.setup_options()["fold_strategy"] == "stratifiedkfold"
    assert REGRESSION.setup_options() == {}
    assert CLASSIFICATION.categorical_target and not REGRESSION.categorical_target


def test_the_servers_feedback_check_refuses_what_the_task_cannot_use():
    from serving.validation import RequestError, check_feedback_value

    check_feedback_value(3, "classification")
    check_feedback_value("good", "classification")
    check_feedback_value(2.5, "regression")
    for value, task in [(True, "regression"), ("3", "regression"), (math.nan, "classification")]:
        with pytest.raises(RequestError) as refused:
            check_feedback_value(value, task)
        assert refused.value.status == 422 and refused.value.message.startswith("value: ")
    with pytest.raises(RequestError, match="a regression's true value is a finite number, not 'x'"):
        check_feedback_value("x", "regression")
