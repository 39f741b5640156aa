"""One server, many models (issue 30, item 4): each model on its own routes with its own A/B
split, sticky routing, shadow and log rows; models load on their first request and the least
recently used is unloaded beyond ``serving.max_loaded_models`` or the memory budget.

The three models of ``examples/three_models.yaml``, small trees registered without training
(``tests.support.many_models``), one shared database.
"""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from driftloop import registry
from driftloop.stages import role_moves
from driftloop.storage import Feedback, Prediction, make_engine, session_scope
from serving.app import create_app
from tests.support.served_models import records_of, three_models

ADMIN = "test-admin-token"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    with three_models(tmp_path_factory.mktemp("many")) as models:
        yield models


def _app(models, **serving):
    """A server for ``models`` (every model given the same ``serving`` keys)."""
    chosen = {
        name: s.model_copy(update={"serving": s.serving.model_copy(update=serving)})
        for name, s in models.items()
    }
    return create_app(chosen, background=False)


@pytest.fixture
def app(models, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", ADMIN)
    app = _app(models)
    yield app
    app.extensions["driftloop"]["shutdown"]()


@pytest.fixture(scope="module")
def shared_app(models):
    """One server for the tests that only read (refusals): a server each would start a log
    writer and load the model for every case."""
    app = _app(models)
    yield app
    app.extensions["driftloop"]["shutdown"]()


def _rows(models, **where) -> list[Prediction]:
    engine = make_engine(next(iter(models.values())).database_url)
    with session_scope(engine) as session:
        query = sa.select(Prediction)
        for key, value in where.items():
            query = query.where(getattr(Prediction, key) == value)
        rows = list(session.scalars(query))
    engine.dispose()
    return rows


def test_each_model_answers_on_its_own_route_and_its_rows_carry_its_name(app, models):
    client = app.test_client()
    answered = {}
    for name, settings in models.items():
        response = client.post(f"/models/{name}/predict", json={"records": records_of(settings, 3)})
        assert response.status_code == 200, response.json
        body = answered[name] = response.json
        assert body["model"] == name
        assert body["version"] == "1" or (name == "red_wine" and body["variant"] == "staging")
        assert len(body["predictions"]) == 3
    # the classifiers answer with class probabilities, the regression with a number
    assert "probabilities" in answered["white_wine"]["predictions"][0]
    alcohol = answered["white_alcohol"]["predictions"][0]
    assert "probabilities" not in alcohol and isinstance(alcohol["prediction"], float)
    app.extensions["driftloop"]["shutdown"]()  # drains the log
    for name, body in answered.items():
        rows = _rows(models, request_id=body["request_id"])
        assert {row.model_name for row in rows} == {name} and len(rows) >= 3


def test_without_a_name_several_models_answer_400_and_an_unknown_one_404(shared_app, models):
    client = shared_app.test_client()
    record = records_of(models["white_wine"], 1)[0]
    for route in ("predict", "explain", "feedback"):
        body = {"record_id": "r", "value": 5} if route == "feedback" else {"record": record}
        refused = client.post(f"/{route}", json=body)
        assert refused.status_code == 400
        assert f"/models/<name>/{route}" in refused.json["error"], refused.json
        unknown = client.post(f"/models/nope/{route}", json=body)
        assert unknown.status_code == 404
        assert "no model 'nope'" in unknown.json["error"] and "red_wine" in unknown.json["error"]
    assert client.get("/ready").json["models"] == list(models)


def test_a_one_model_mapping_still_answers_on_predict(models):
    app = create_app({"white_wine": models["white_wine"]}, background=False)
    try:
        record = records_of(models["white_wine"], 1)[0]
        response = app.test_client().post("/predict", json={"record": record})
        assert response.status_code == 200 and response.json["model"] == "white_wine"
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_split_sticky_routing_and_shadow_are_each_models_own(app, models):
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    split = client.put(
        "/admin/models/red_wine/traffic",
        json={"staging_weight": 0.5, "shadow": True},
        headers=admin,
    )
    assert split.status_code == 200
    red = records_of(models["red_wine"], 1)[0]
    white = records_of(models["white_wine"], 1)[0]
    staging = {"X-Variant": "staging"}
    forced = client.post("/models/red_wine/predict", json={"record": red}, headers=staging)
    assert forced.json["variant"] == "staging" and forced.json["version"] == "2"
    # white_wine has no Staging and its split was never touched
    none = client.post("/models/white_wine/predict", json={"record": white}, headers=staging)
    assert none.status_code == 409
    assert client.get("/models/white_wine").json["shadow"] is False
    assert client.get("/models/red_wine").json["weights"]["staging"] == 0.5
    variants = {
        key: {
            client.post(
                "/models/red_wine/predict", json={"record": red}, headers={"X-Client-Key": key}
            ).json["variant"]
            for _ in range(3)
        }
        for key in ("alice", "bob", "carol", "dave", "erin", "frank")
    }
    assert all(len(seen) == 1 for seen in variants.values())  # sticky, per key
    assert {next(iter(seen)) for seen in variants.values()} == {"production", "staging"}
    production = client.post(
        "/models/red_wine/predict", json={"record": red}, headers={"X-Variant": "production"}
    ).json
    app.extensions["driftloop"]["shutdown"]()
    shadow = _rows(models, request_id=production["request_id"], shadow=True)
    assert [(r.model_name, r.model_version) for r in shadow] == [("red_wine", "2")]


def test_feedback_record_ids_are_per_model(app, models):
    client = app.test_client()
    first = client.post("/models/white_wine/feedback", json={"record_id": "same", "value": 6})
    other = client.post("/models/red_wine/feedback", json={"record_id": "same", "value": 5})
    again = client.post("/models/white_wine/feedback", json={"record_id": "same", "value": 7})
    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 409)
    bad = client.post("/models/white_alcohol/feedback", json={"record_id": "x", "value": "high"})
    assert bad.status_code == 422  # a regression's true value is a number
    engine = make_engine(models["red_wine"].database_url)
    with session_scope(engine) as session:
        stored = session.scalars(sa.select(Feedback).where(Feedback.record_id == "same")).all()
        assert sorted(f.model_name for f in stored) == ["red_wine", "white_wine"]
    engine.dispose()
    # none of it loaded a model: feedback needs only the database
    assert app.extensions["driftloop"]["fleet"].resident() == []


def test_models_load_on_first_request_and_the_least_recent_is_unloaded(models):
    app = _app(models, max_loaded_models=2)
    fleet = app.extensions["driftloop"]["fleet"]
    client = app.test_client()
    try:
        assert fleet.resident() == []  # nothing loads at start
        for name in ("white_wine", "red_wine", "white_wine"):
            records = records_of(models[name], 1)
            assert (
                client.post(f"/models/{name}/predict", json={"records": records}).status_code == 200
            )
        assert fleet.resident() == ["red_wine", "white_wine"]  # least recent first
        red = fleet.peek("red_wine")
        answered = client.post(
            "/models/white_alcohol/predict",
            json={"records": records_of(models["white_alcohol"], 2)},
        )
        assert answered.status_code == 200 and fleet.resident() == ["white_wine", "white_alcohol"]
        # the unloaded store stops its threads, and nothing holds it any more
        for thread in threading.enumerate():
            if thread.name == "model-unload":
                thread.join(30)
        assert red._stop.is_set() and red.snapshot.production.batcher._closed
        unloaded = weakref.ref(red)
        del red
        gc.collect()
        assert unloaded() is None
        assert (fleet.loads, fleet.evictions) == (3, 1)
        again = client.post(
            "/models/red_wine/predict", json={"records": records_of(models["red_wine"], 1)}
        )
        assert again.status_code == 200 and fleet.resident() == ["white_alcohol", "red_wine"]
        assert fleet.loads == 4
        text = client.get("/metrics").get_data(as_text=True)
        loaded = {
            s.labels["model"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "driftloop_model_loaded"
        }
        assert loaded == {"white_wine": 0.0, "red_wine": 1.0, "white_alcohol": 1.0}
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_a_memory_budget_keeps_only_what_fits(models):
    """A budget below any model's footprint keeps the newest model alone."""
    app = _app(models, max_loaded_memory_mb=1e-6)
    fleet = app.extensions["driftloop"]["fleet"]
    client = app.test_client()
    try:
        for name in models:
            records = records_of(models[name], 1)
            assert (
                client.post(f"/models/{name}/predict", json={"records": records}).status_code == 200
            )
            assert fleet.resident() == [name]
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_a_promotion_of_one_model_swaps_it_and_touches_no_other(app, models):
    client = app.test_client()
    for name in models:
        assert (
            client.post(
                f"/models/{name}/predict", json={"record": records_of(models[name], 1)[0]}
            ).status_code
            == 200
        )
    fleet = app.extensions["driftloop"]["fleet"]
    before = {name: fleet.peek(name).snapshot for name in models}
    red = models["red_wine"]
    client_ = registry.configure(red)
    role_moves.set_role(client_, "red_wine", "2", registry.PRODUCTION)
    try:
        reloaded = client.post(
            "/admin/models/red_wine/reload", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert reloaded.json["production"] == "2"
        answer = client.post(
            "/models/red_wine/predict",
            json={"record": records_of(red, 1)[0]},
            headers={"X-Variant": "production"},
        )
        assert answer.json["version"] == "2"
        for name in ("white_wine", "white_alcohol"):
            assert fleet.peek(name).snapshot is before[name]  # not even refreshed
    finally:
        role_moves.set_role(client_, "red_wine", "1", registry.PRODUCTION)
        role_moves.set_role(client_, "red_wine", "2", registry.STAGING)


def test_metrics_name_the_model_of_every_series(app, models):
    client = app.test_client()
    for name in ("white_wine", "red_wine"):
        assert (
            client.post(
                f"/models/{name}/predict", json={"record": records_of(models[name], 1)[0]}
            ).status_code
            == 200
        )
    families = {
        family.name: family
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    }
    predicted = {s.labels["model"] for s in families["driftloop_predictions"].samples}
    assert {"white_wine", "red_wine"} <= predicted
    # the loop's state of every declared model, loaded or not
    checks = {s.labels["model"] for s in families["driftloop_drift_checks"].samples}
    assert checks == set(models)
    # the prediction log's writer counts rows per database, which models may share
    for family in families.values():
        if family.name.startswith("driftloop_") and not family.name.startswith(
            "driftloop_prediction_log_rows"
        ):
            assert all("model" in s.labels for s in family.samples), family.name


def _columns(records: list[dict]) -> list[dict]:
    """The records as OIP inputs, one per feature column."""
    names = list(records[0])
    return [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": "FP64",
            "data": [float(r[name]) for r in records],
        }
        for name in names
    ]


def test_open_inference_protocol_health_metadata_and_infer(app, models):
    client = app.test_client()
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2/models/red_wine/ready").json == {"name": "red_wine", "ready": True}
    assert client.get("/v2/models/nope/ready").status_code == 404
    white = models["white_wine"]
    metadata = client.get("/v2/models/white_wine").json
    assert [i["name"] for i in metadata["inputs"]] == list(white.feature_columns)
    assert metadata["versions"] == ["1"]
    outputs = {o["name"]: o for o in metadata["outputs"]}
    assert outputs["predict_proba"]["shape"][0] == -1 and set(outputs) == {
        "predict",
        "predict_proba",
        "record_id",
    }
    records = records_of(white, 4)
    production = {"X-Variant": "production"}
    expected = client.post(
        "/models/white_wine/predict", json={"records": records}, headers=production
    ).json["predictions"]
    # one input per column, and one [rows, features] input, nested by rows
    by_column = client.post(
        "/v2/models/white_wine/infer", json={"inputs": _columns(records)}, headers=production
    )
    matrix = {
        "id": "mine",
        "inputs": [
            {
                "name": "input-0",
                "shape": [4, len(records[0])],
                "datatype": "FP64",
                "data": [[float(v) for v in r.values()] for r in records],
            }
        ],
    }
    by_rows = client.post("/v2/models/white_wine/infer", json=matrix, headers=production)
    for response in (by_column, by_rows):
        assert response.status_code == 200, response.json
        out = {o["name"]: o for o in response.json["outputs"]}
        assert out["predict"]["data"] == [p["prediction"] for p in expected]
        assert out["predict"]["shape"] == [4] and out["predict"]["datatype"] == "INT64"
        k = len(out["predict_proba"]["parameters"]["classes"])
        assert (
            out["predict_proba"]["shape"] == [4, k] and len(out["predict_proba"]["data"]) == 4 * k
        )
        assert len(set(out["record_id"]["data"])) == 4
    assert by_rows.json["id"] == "mine" and by_rows.json["model_name"] == "white_wine"
    alcohol = client.post(
        "/v2/models/white_alcohol/infer",
        json={
            "inputs": _columns(records_of(models["white_alcohol"], 2)),
            "outputs": [{"name": "predict"}],
        },
    )
    assert alcohol.status_code == 200, alcohol.json
    (only,) = alcohol.json["outputs"]
    assert only["name"] == "predict" and only["datatype"] == "FP64" and only["shape"] == [2]
    app.extensions["driftloop"]["shutdown"]()
    logged = _rows(models, request_id=alcohol.json["parameters"]["request_id"])
    assert [r.model_name for r in logged] == ["white_alcohol", "white_alcohol"]


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        (lambda b: b["inputs"][0].update(shape=[3]), 422, "holds 3 values, its data has 2"),
        (lambda b: b["inputs"][0].update(data=["a", "b"]), 422, "is not of datatype FP64"),
        (lambda b: b["inputs"][0].update(name="colour"), 422, "'colour' is not a feature"),
        (lambda b: b["inputs"].append(dict(b["inputs"][0])), 422, "is given twice"),
        (lambda b: b["inputs"][1].update(shape=[1], data=[1.0]), 422, "has 1 rows"),
        (lambda b: b["inputs"][0].update(datatype="FP128"), 422, "not an inference request"),
        (lambda b: b.pop("inputs"), 422, "not an inference request"),
        (lambda b: b.update(outputs=[{"name": "shap"}]), 400, "'shap' is not one"),
        (lambda b: b["inputs"].pop(0), 422, "fixed acidity"),  # a feature left out
        (
            lambda b: b.update(
                inputs=[{**b["inputs"][0], "name": "x", "shape": [2, 3], "data": [0.0] * 6}]
            ),
            422,
            "needs 11 features",
        ),
    ],
)
def test_bad_tensors_get_a_4xx_with_a_sentence(shared_app, models, change, status, fragment):
    body = {"inputs": _columns(records_of(models["white_wine"], 2))}
    change(body)
    response = shared_app.test_client().post("/v2/models/white_wine/infer", json=body)
    assert response.status_code == status, response.json
    assert fragment in " ".join([response.json["error"], *response.json["details"]])


def test_the_openapi_document_covers_every_models_routes_and_loads_none(app):
    spec = app.test_client().get("/openapi.json").json
    assert {
        "/models/{name}/predict",
        "/models/{name}/feedback",
        "/v2/models/{name}/infer",
        "/v2/models/{name}",
        "/v2/health/ready",
    } <= set(spec["paths"])
    assert "404" in spec["paths"]["/models/{name}/predict"]["post"]["responses"]
    assert "model named in the path" in spec["components"]["schemas"]["Record"]["description"]
    assert app.extensions["driftloop"]["fleet"].resident() == []


def test_concurrent_first_requests_load_a_model_once(models):
    app = _app(models)
    fleet = app.extensions["driftloop"]["fleet"]
    record = records_of(models["red_wine"], 1)[0]
    statuses: list[int] = []
    start = threading.Barrier(6)

    def ask() -> None:
        client = app.test_client()
        start.wait()
        answer = client.post("/models/red_wine/predict", json={"record": record})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [200] * 6 and fleet.loads == 1 and fleet.resident() == ["red_wine"]
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_a_models_explain_route_explains_with_that_model(shared_app, models):
    record = records_of(models["white_alcohol"], 1)[0]
    response = shared_app.test_client().post(
        "/models/white_alcohol/explain", json={"record": record}
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["model"] == "white_alcohol" and body["version"] == "1"
    (explained,) = body["explanations"]
    assert set(explained["shap"]) == set(models["white_alcohol"].feature_columns)
