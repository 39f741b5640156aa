"""Request checks: the fast paths must give exactly what the plain path gives, and feedback
values must be ones the A/B analysis can use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.batching import _together
from serving.models import FeatureSchema, predictor
from serving.validation import RequestError, _checked_frame, check_feedback_value, records_frame

SCHEMA = FeatureSchema(("a", "b", "c"), frozenset({"a", "b", "c"}))
numbers = st.one_of(
    st.integers(-(10**12), 10**12), st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"a": numbers, "b": numbers, "c": numbers}), min_size=1))
def test_the_numeric_fast_path_equals_the_checked_path(records):
    fast = records_frame(records, SCHEMA, 10_000, set())
    checked = _checked_frame(records, SCHEMA, set(), 1.0).frame
    assert list(fast.columns) == list(SCHEMA.names)
    np.testing.assert_array_equal(fast.to_numpy(dtype=float), checked.to_numpy(dtype=float))


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"a": 1, "b": 2}, "missing field 'c'"),
        ({"a": 1, "b": 2, "c": 3, "d": 4}, "unknown field 'd'"),
        ({"a": 1, "b": True, "c": 3}, "field 'b' is not a number"),
        ({"a": 1, "b": float("nan"), "c": 3}, "is not a finite number"),
        ({"a": 10**400, "b": 1, "c": 3}, "a huge integer"),
        ({"a": 1e301, "b": 1, "c": 3}, "is too large"),
    ],
)
def test_anything_off_falls_back_to_the_path_that_names_it(record, fragment):
    with pytest.raises(RequestError) as refused:
        records_frame([{"a": 0, "b": 0, "c": 0}, record], SCHEMA, 10, set())
    assert any(fragment in d and d.startswith("record 1") for d in refused.value.details)


def test_the_sticky_field_is_not_a_feature():
    frame = records_frame([{"a": 1, "b": 2, "c": 3, "client_id": "x"}], SCHEMA, 10, {"client_id"})
    assert list(frame.columns) == ["a", "b", "c"]


def test_stacked_frames_equal_concatenated_ones():
    frames = [
        pd.DataFrame(np.random.default_rng(i).random((i + 1, 3)), columns=list("abc"))
        for i in range(4)
    ]
    pd.testing.assert_frame_equal(_together(frames), pd.concat(frames, ignore_index=True))
    mixed = [frames[0], pd.DataFrame({"a": ["x"], "b": [1.0], "c": [2.0]})]
    pd.testing.assert_frame_equal(_together(mixed), pd.concat(mixed, ignore_index=True))


class Thresholded:
    """A classifier whose prediction is not its most probable class (a custom threshold)."""

    def predict_proba(self, frame):
        return np.tile([0.6, 0.4], (len(frame), 1))

    def predict(self, frame):
        return np.array(["b"] * len(frame))


class Plain(Thresholded):
    def predict(self, frame):
        return np.array(["a"] * len(frame))


def test_one_probability_pass_only_when_it_agrees_with_predict():
    example = pd.DataFrame({"x": [1.0, 2.0]})
    fast = predictor(Plain(), ["a", "b"], example)
    assert fast.__name__ == "one_pass" and fast(example) == (["a", "a"], [[0.6, 0.4]] * 2)
    careful = predictor(Thresholded(), ["a", "b"], example)
    assert careful.__name__ == "two_passes" and careful(example)[0] == ["b", "b"]
    assert predictor(Plain(), ["a", "b"], None).__name__ == "two_passes"  # nothing to check on


@pytest.mark.parametrize("value", ["n/a", True, float("nan"), None])
def test_a_regression_true_value_must_be_a_finite_number(value):
    with pytest.raises(RequestError, match="finite number"):
        check_feedback_value(value, "regression")
    check_feedback_value(6.5, "regression")
    check_feedback_value("red", "classification")  # labels may be text
