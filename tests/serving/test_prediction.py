"""The prediction as plain functions (``serving.prediction``), without Flask or a server: which
version answers, the checks, the answer's body and the prediction-log rows, shadow mode."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from driftloop.ab.traffic import TrafficSplit, client_hash, key_point
from serving.batching import MicroBatcher
from serving.models import FeatureSchema, LoadedModel, ModelSnapshot, predictor
from serving.prediction import predict, route
from serving.schemas import PredictRequest
from serving.validation import RequestError
from tests.conftest import ROOT

FEATURES = ("alcohol", "pH")
TRAINING = pd.DataFrame(
    {"alcohol": [9.0, 10, 11, 12, 13, 14], "pH": [3.0, 3.1, 3.2, 3.3, 3.4, 3.5]}
)
LABELS = [5, 5, 6, 6, 7, 7]


@pytest.fixture
def models():
    """A Production and a Staging version of a small classifier, each behind its batcher."""
    pipeline = DecisionTreeClassifier(random_state=0).fit(TRAINING, LABELS)
    classes = [c.item() for c in pipeline.classes_]
    schema = FeatureSchema(FEATURES, frozenset(FEATURES))
    loaded = {
        variant: LoadedModel(
            variant,
            version,
            pipeline,
            schema,
            classes,
            MicroBatcher(predictor(pipeline, classes, TRAINING), 64, 0.0, variant),
        )
        for variant, version in (("production", "1"), ("staging", "2"))
    }
    yield loaded
    for model in loaded.values():
        model.batcher.close()


def _body(**body) -> PredictRequest:
    return PredictRequest.model_validate(body)


def test_the_prediction_needs_no_flask():
    code = "import sys, serving.prediction; print('flask' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_one_record_is_predicted_answered_and_logged(models, settings):
    snapshot = ModelSnapshot(models["production"], None, TrafficSplit(0.0))
    body = _body(record={"alcohol": 13.5, "pH": 3.45, "client_id": "bob"})
    chosen = route(snapshot, body, {}, settings)
    assert (chosen.model.variant, chosen.assignment) == ("production", "sticky")
    result = predict(snapshot, chosen, body.items, settings, "req", time.perf_counter())
    answer = result.response()
    assert answer["request_id"] == "req" and answer["model"] == settings.model.name
    assert (answer["version"], answer["variant"]) == ("1", "production")
    (one,) = answer["predictions"]
    assert one["record_id"] == "req-0" and one["prediction"] == 7
    assert set(one["probabilities"]) == {"5", "6", "7"}
    assert one["probabilities"]["7"] == max(one["probabilities"].values())
    (row,) = result.log_rows
    assert row["record_id"] == "req-0" and row["assignment"] == "sticky" and not row["shadow"]
    assert row["inputs"] == {"alcohol": 13.5, "pH": 3.45}  # the sticky key is not an input
    assert row["output"]["prediction"] == 7 and row["missing"] is None
    # the A/B test's cluster: the client's key, hashed, never the key itself
    assert row["client_key"] == client_hash("bob") and "bob" not in row["client_key"]
    assert len(row["client_key"]) == 32 and client_hash("bob") != client_hash("alice")


def test_a_batch_gets_one_answer_per_record_in_order(models, settings):
    snapshot = ModelSnapshot(models["production"], None, TrafficSplit(0.0))
    records = [{"alcohol": a, "pH": p} for a, p in ((9.0, 3.0), (11.5, 3.25), (13.5, 3.45))] * 333
    body = _body(records=records)
    result = predict(snapshot, route(snapshot, body, {}, settings), body.items, settings, "r", 0.0)
    answers = result.response()["predictions"]
    assert [a["prediction"] for a in answers] == [5, 6, 7] * 333
    assert [row["record_id"] for row in result.log_rows] == [f"r-{i}" for i in range(999)]


def test_shadow_mode_logs_staging_without_answering_with_it(models, settings):
    snapshot = ModelSnapshot(models["production"], models["staging"], TrafficSplit(0.0, True))
    body = _body(record={"alcohol": 9.0, "pH": 3.0})
    result = predict(snapshot, route(snapshot, body, {}, settings), body.items, settings, "s", 0.0)
    assert result.response()["variant"] == "production"
    logged = sorted((r["variant"], r["model_version"], r["shadow"]) for r in result.log_rows)
    assert logged == [("production", "1", False), ("staging", "2", True)]
    served, shadow = sorted(result.log_rows, key=lambda r: r["shadow"])
    # the paired A/B design matches the two by record id; Staging's guardrail reads its own time
    assert served["record_id"] == shadow["record_id"]
    assert 0 <= shadow["latency_ms"] < served["latency_ms"]


def test_sticky_keys_follow_the_split_and_headers_win(models, settings):
    snapshot = ModelSnapshot(models["production"], models["staging"], TrafficSplit(0.5))
    record = {"alcohol": 9.0, "pH": 3.0}
    for key in (f"client-{i}" for i in range(20)):
        expected = "staging" if key_point(key) < 0.5 else "production"
        by_body = route(snapshot, _body(record=record, client_id=key), {}, settings)
        by_header = route(
            snapshot, _body(record=record, client_id="other"), {"X-Client-Key": key}, settings
        )
        assert by_body.model.variant == by_header.model.variant == expected
    forced = route(snapshot, _body(record=record), {"X-Variant": "staging"}, settings)
    assert (forced.model.version, forced.assignment) == ("2", "forced")
    unkeyed = route(snapshot, _body(records=[record, record]), {}, settings)
    assert (unkeyed.assignment, unkeyed.client) == ("random", None)


@pytest.mark.parametrize(
    ("staging", "headers", "record", "status", "fragment"),
    [
        (False, {"X-Variant": "canary"}, {"alcohol": 9.0, "pH": 3.0}, 400, "X-Variant must be"),
        (False, {"X-Variant": "staging"}, {"alcohol": 9.0, "pH": 3.0}, 409, "no staging version"),
        (False, {}, {"alcohol": 9.0}, 422, "record 0: missing field 'pH'"),
        (False, {}, {"alcohol": "x", "pH": 3.0}, 422, "field 'alcohol' is not a number"),
    ],
)
def test_refusals_name_the_reason(models, settings, staging, headers, record, status, fragment):
    snapshot = ModelSnapshot(models["production"], models["staging"] if staging else None)
    body = _body(record=record)
    with pytest.raises(RequestError) as refused:
        predict(snapshot, route(snapshot, body, headers, settings), body.items, settings, "x", 0)
    assert refused.value.status == status
    assert fragment in " ".join([refused.value.message, *refused.value.details])


def test_no_production_is_a_503_naming_the_model(settings):
    with pytest.raises(RequestError) as refused:
        route(ModelSnapshot(), _body(record={"alcohol": 1.0}), {}, settings)
    assert refused.value.status == 503 and settings.model.name in refused.value.message
