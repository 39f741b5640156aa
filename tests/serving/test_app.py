"""The Flask server in-process: routing, validation, logging, admin and the operational endpoints.

One real bootstrapped model (PyCaret, embedded MLflow) serves every test in this module.
"""

from __future__ import annotations

import hashlib
import math
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from driftloop import registry
from driftloop.stack.processes import wait_until
from driftloop.stages import role_moves
from driftloop.storage import Feedback, Prediction, session_scope
from serving.app import create_app
from tests.conftest import ROOT
from tests.support.served_home import production_and_staging

ADMIN = "test-admin-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Version 1 in Production, version 2 in Staging."""
    with production_and_staging(tmp_path_factory.mktemp("serving")) as served:
        yield served


@pytest.fixture
def app(served, monkeypatch):
    settings, _engine = served
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", ADMIN)
    app = create_app(settings, background=False)
    yield app
    app.extensions["driftloop"]["shutdown"]()


@pytest.fixture
def client(app):
    return app.test_client()


def _records(n: int) -> list[dict]:
    frame = pd.read_csv(ROOT / "data/wine/winequality-white.csv", sep=";").drop(columns="quality")
    return frame.head(n).to_dict("records")


def _logged(engine, **where) -> list[Prediction]:
    with session_scope(engine) as session:
        query = sa.select(Prediction)
        for key, value in where.items():
            query = query.where(getattr(Prediction, key) == value)
        return list(session.scalars(query))


def test_one_record_gets_prediction_probabilities_ids_and_version(client, app, served):
    response = client.post(
        "/predict", json={"record": _records(1)[0]}, headers={"X-Variant": "production"}
    )
    assert response.status_code == 200
    body = response.json
    assert (
        body["model"] == "wine-quality"
        and body["version"] == "1"
        and body["variant"] == "production"
    )
    (answer,) = body["predictions"]
    probabilities = answer["probabilities"]
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
    assert probabilities[str(answer["prediction"])] == max(probabilities.values())
    app.extensions["driftloop"]["log"].close()
    (row,) = _logged(served[1], request_id=body["request_id"])
    assert row.record_id == answer["record_id"] and row.model_version == "1" and not row.shadow


def test_a_batch_is_answered_record_by_record(client):
    """Each record of a 50-record batch gets the answer it gets when sent alone."""
    production = {"X-Variant": "production"}
    records = _records(50)
    response = client.post("/predict", json={"records": records}, headers=production)
    assert response.status_code == 200 and len(response.json["predictions"]) == 50
    assert len({p["record_id"] for p in response.json["predictions"]}) == 50
    for record, answer in zip(records, response.json["predictions"], strict=True):
        (alone,) = client.post("/predict", json={"record": record}, headers=production).json[
            "predictions"
        ]
        assert alone["prediction"] == answer["prediction"]
        assert alone["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-12)


def test_sticky_keys_and_forced_variants(client, app, served):
    record = _records(1)[0]
    variants = {
        client.post("/predict", json={"record": record}, headers={"X-Client-Key": "alice"}).json[
            "variant"
        ]
        for _ in range(5)
    }
    assert len(variants) == 1
    forced = client.post("/predict", json={"record": record}, headers={"X-Variant": "staging"})
    assert forced.json["variant"] == "staging" and forced.json["version"] == "2"
    plain = client.post("/predict", json={"record": record})
    app.extensions["driftloop"]["log"].close()
    assigned = {
        response.json["request_id"]: _logged(served[1], request_id=response.json["request_id"])[
            0
        ].assignment
        for response in (forced, plain)
    }
    assert assigned == {forced.json["request_id"]: "forced", plain.json["request_id"]: "random"}
    sticky = _logged(served[1], variant=next(iter(variants)), assignment="sticky")
    assert sticky  # the A/B analysis keeps sticky and random rows and leaves out forced ones


def test_shadow_mode_logs_staging_without_returning_it(client, app, served):
    engine = served[1]
    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        client.put(
            "/admin/traffic", json={"staging_weight": 0.0, "shadow": True}, headers=headers
        ).status_code
        == 200
    )
    response = client.post("/predict", json={"record": _records(1)[0]})
    assert response.json["variant"] == "production"
    app.extensions["driftloop"]["log"].close()
    rows = _logged(engine, request_id=response.json["request_id"])
    assert sorted((r.variant, r.shadow) for r in rows) == [("production", False), ("staging", True)]
    assert (
        client.put("/admin/traffic", json={"staging_weight": 0.1}, headers=headers).json[
            "staging_weight"
        ]
        == 0.1
    )


GOOD = _records(1)[0]


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "not valid JSON"),
        (
            {"data": "a=1", "content_type": "application/x-www-form-urlencoded"},
            415,
            "Content-Type: application/json",
        ),
        ({"json": [1, 2]}, 422, "expected shape"),
        ({"json": {"record": GOOD, "records": [GOOD]}}, 422, "either 'record'"),
        (
            {"json": {"record": {k: v for k, v in GOOD.items() if k != "pH"}}},
            422,
            "record 0: missing field 'pH'",
        ),
        ({"json": {"record": {**GOOD, "colour": "red"}}}, 422, "record 0: unknown field 'colour'"),
        (
            {"json": {"records": [GOOD, {**GOOD, "alcohol": "strong"}]}},
            422,
            "record 1: field 'alcohol' is not a number",
        ),
        ({"json": {"record": {**GOOD, "alcohol": True}}}, 422, "field 'alcohol' is not a number"),
        (
            {
                "data": '{"record": {"pH": NaN}}'.replace(
                    '{"pH": NaN}',
                    str({**GOOD, "pH": "NaN"}).replace("'", '"').replace('"NaN"', "NaN"),
                ),
                "content_type": "application/json",
            },
            422,
            "field 'pH' is not a finite number",
        ),
        ({"json": {"record": {**GOOD, "density": 1e308 * 10}}}, 422, "density"),
        ({"json": {"record": {**GOOD, "density": 10**400}}}, 422, "field 'density'"),
        ({"json": {"record": {**GOOD, "density": 1e301}}}, 422, "is too large"),
        ({"json": {"record": {**GOOD, "alcohol": 1e39}}}, 422, "field 'alcohol' is too large"),
        ({"json": {"records": []}}, 422, "no records"),
        ({"json": {"records": [GOOD] * 1001}}, 413, "limit is 1000"),
        ({"data": "x" * 2_100_000, "content_type": "application/json"}, 413, "larger than"),
        (
            {"json": {"record": GOOD}, "headers": {"X-Variant": "canary"}},
            400,
            "X-Variant must be one of",
        ),
        ({"json": {"record": None}}, 422, "either 'record'"),
    ],
)
def test_bad_requests_get_4xx_with_a_clear_message(client, kwargs, status, fragment):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.json
    message = " ".join([response.json["error"], *response.json["details"]])
    assert fragment in message, message


def test_failed_requests_are_logged_with_their_status(client, app, served):
    client.post("/predict", json={"records": []})
    app.extensions["driftloop"]["log"].close()
    assert any(row.error and "no records" in row.error for row in _logged(served[1], status=422))


def test_api_keys_when_required(served, monkeypatch):
    settings, _ = served
    strict = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"require_api_key": True})}
    )
    monkeypatch.setenv("DRIFTLOOP_API_KEYS", "k1,k2")
    app = create_app(strict, background=False)
    client = app.test_client()
    try:
        assert client.post("/predict", json={"record": GOOD}).status_code == 401
        assert (
            client.post(
                "/predict", json={"record": GOOD}, headers={"X-API-Key": "wrong"}
            ).status_code
            == 401
        )
        assert (
            client.post("/predict", json={"record": GOOD}, headers={"X-API-Key": "k2"}).status_code
            == 200
        )
        assert client.post("/feedback", json={"record_id": "r", "value": 1}).status_code == 401
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_feedback_once_per_record_unknown_ids_kept(client, served):
    assert (
        client.post("/feedback", json={"record_id": "never-predicted", "value": 6}).status_code
        == 201
    )
    repeat = client.post("/feedback", json={"record_id": "never-predicted", "value": 5})
    assert repeat.status_code == 409 and "already given" in repeat.json["error"]
    assert client.post("/feedback", json={"record_id": "x"}).status_code == 422
    too_long = client.post("/feedback", json={"record_id": "r" * 65, "value": 6})
    assert too_long.status_code == 422 and "record_id" in too_long.json["details"][0]
    with session_scope(served[1]) as session:
        assert (
            session.scalar(sa.select(Feedback.value).where(Feedback.record_id == "never-predicted"))
            == 6
        )


def test_admin_endpoints_need_the_token(client):
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code == 401
    reloaded = client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert reloaded.status_code == 200 and reloaded.json["production"] == "1"
    bad = client.put(
        "/admin/traffic", json={"staging_weight": 3}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert bad.status_code == 422 and "between 0 and 1" in bad.json["error"]
    text = client.put(
        "/admin/traffic",
        json={"staging_weight": 0.1, "shadow": "false"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert text.status_code == 422 and '"shadow": false' in text.json["error"]


def test_operational_endpoints(client, served):
    assert client.get("/health").json == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    models = client.get("/models").json
    assert (
        models["variants"]["production"]["version"] == "1"
        and models["variants"]["staging"]["version"] == "2"
    )
    assert models["weights"]["staging"] + models["weights"]["production"] == 1.0
    refused = {"model": "wine-quality", "variant": "staging", "status": "422"}
    before = _sample(client, "driftloop_prediction_errors_total", refused)
    client.post("/predict", json={"record": GOOD})
    client.post(
        "/predict", json={"record": {**GOOD, "alcohol": "x"}}, headers={"X-Variant": "staging"}
    )
    exported = client.get("/metrics").get_data(as_text=True)
    assert "driftloop_predictions_total" in exported
    # counters live for the whole test process: earlier tests' refusals were routed at random
    assert _sample(client, "driftloop_prediction_errors_total", refused) == before + 1
    # the loop's state, read from the database and the model store at scrape time
    assert (
        'driftloop_model_version_info{model="wine-quality",role="production",version="1"} 1.0'
        in exported
    )
    assert 'driftloop_drift_checks{model="wine-quality",status="drift"} 0.0' in exported
    spec = client.get("/openapi.json").json
    assert {"/predict", "/feedback", "/admin/traffic"} <= set(spec["paths"])
    assert "openapi.json" in client.get("/docs").get_data(as_text=True)
    report = served[0].storage.reports_dir / "drift" / "example.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<h1>report</h1>")
    assert client.get("/reports/drift/example.html").status_code == 200
    assert client.get("/reports/../driftloop.db").status_code == 404
    assert client.get("/nope").status_code == 404


def test_no_production_means_503_with_a_sentence(served, tmp_path):
    settings, _ = served
    empty = settings.model_copy(
        update={"model": settings.model.model_copy(update={"name": "nothing-here"})}
    )
    app = create_app(empty, background=False)
    try:
        response = app.test_client().post("/predict", json={"record": GOOD})
        assert (
            response.status_code == 503
            and "no Production version of nothing-here" in response.json["error"]
        )
        assert app.test_client().get("/ready").status_code == 503
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_unreachable_registry_keeps_the_last_good_models(app, client, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast instead of backing off
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    store = app.extensions["driftloop"]["store"]
    store.settings = store.settings.model_copy(
        update={
            "mlflow": store.settings.mlflow.model_copy(
                update={"tracking_uri": "http://127.0.0.1:9"}
            )
        }
    )
    snapshot = store.refresh()
    assert not snapshot.registry_ok and snapshot.production is not None
    ready = client.get("/ready").json
    assert ready["ready"] and "degraded" in ready["status"]
    assert client.post("/predict", json={"record": GOOD}).status_code == 200


def _sample(client, name: str, labels: dict[str, str]) -> float:
    """One sample of /metrics, 0 when the series does not exist yet."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_a_registry_error_is_not_read_as_no_production(app, client, monkeypatch):
    """A 5xx from the registry while looking up an alias means "unknown", not "absent"."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    def unavailable(*_args, **_kwargs):
        raise MlflowException("registry busy", error_code="TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", unavailable)
    snapshot = app.extensions["driftloop"]["store"].refresh()
    assert not snapshot.registry_ok and snapshot.production.version == "1"
    assert client.post("/predict", json={"record": GOOD}).status_code == 200
    assert client.get("/ready").status_code == 200


def test_reload_picks_up_an_alias_moved_in_the_registry(client, served):
    settings, _ = served
    registry_client = registry.configure(settings)
    name = settings.model.name
    source = registry_client.get_model_version(name, "1")
    third = str(
        registry_client.create_model_version(name, source.source, run_id=source.run_id).version
    )
    headers = {"Authorization": f"Bearer {ADMIN}"}
    role_moves.set_role(registry_client, name, third, registry.STAGING)
    try:
        moved = client.post("/admin/reload", headers=headers).json
        assert (moved["production"], moved["staging"]) == ("1", third)
        forced = client.post("/predict", json={"record": GOOD}, headers={"X-Variant": "staging"})
        assert forced.json["version"] == third
    finally:
        role_moves.set_role(registry_client, name, "2", registry.STAGING)
    assert client.post("/admin/reload", headers=headers).json["staging"] == "2"


def _constant_staging(settings) -> str:
    """A Staging version that is another model: it answers 42 to every record (a quality no
    wine has), with Production's input signature, registered beside version 1."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import get_model_info
    from sklearn.dummy import DummyClassifier

    client = registry.configure(settings)
    name = settings.model.name
    signature = get_model_info(registry.model_uri(name, "1")).signature
    features = [column.name for column in signature.inputs.inputs]
    frame = pd.DataFrame([GOOD])[features]
    model = DummyClassifier(strategy="constant", constant=42).fit(frame, [42])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    version = str(mlflow.register_model(info.model_uri, name).version)
    role_moves.set_role(client, name, version, registry.STAGING)
    return version


def test_staging_answers_are_stagings_own_when_the_two_models_differ(client, app, served):
    """Every other serving test has Staging a copy of Production; here it is another model, so a
    Staging answer taken from the wrong model shows: forced, routed and shadow answers are
    Staging's own prediction (42), Production's never is."""
    settings, engine = served
    headers = {"Authorization": f"Bearer {ADMIN}"}
    version = _constant_staging(settings)
    try:
        assert client.post("/admin/reload", headers=headers).json["staging"] == version
        forced = client.post("/predict", json={"record": GOOD}, headers={"X-Variant": "staging"})
        assert (forced.json["version"], forced.json["predictions"][0]["prediction"]) == (
            version,
            42,
        )
        production = client.post(
            "/predict", json={"record": GOOD}, headers={"X-Variant": "production"}
        )
        assert production.json["version"] == "1"
        assert production.json["predictions"][0]["prediction"] != 42
        client.put("/admin/traffic", json={"staging_weight": 1.0}, headers=headers)
        routed = client.post("/predict", json={"record": GOOD, "client_id": "any-client"}).json
        assert (routed["variant"], routed["predictions"][0]["prediction"]) == ("staging", 42)
        client.put("/admin/traffic", json={"staging_weight": 0.0, "shadow": True}, headers=headers)
        shadowed = client.post("/predict", json={"record": GOOD}).json
        assert shadowed["variant"] == "production"
        assert shadowed["predictions"][0]["prediction"] != 42  # the shadow is never returned
        app.extensions["driftloop"]["log"].close()
        rows = {r.shadow: r for r in _logged(engine, request_id=shadowed["request_id"])}
        assert (rows[True].variant, rows[True].model_version) == ("staging", version)
        assert rows[True].output["prediction"] == 42
        assert rows[False].output["prediction"] == shadowed["predictions"][0]["prediction"]
    finally:
        client.put("/admin/traffic", json={"staging_weight": 0.1, "shadow": False}, headers=headers)
        name = settings.model.name
        role_moves.set_role(registry.configure(settings), name, "2", registry.STAGING)
    assert client.post("/admin/reload", headers=headers).json["staging"] == "2"


def _point(key: str) -> float:
    """Where the README says a sticky key falls: BLAKE2b (8 bytes, big-endian) over 2**64."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


def test_routing_follows_client_id_and_the_sticky_field_of_the_body(client, app, served):
    settings, engine = served
    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        client.put("/admin/traffic", json={"staging_weight": 0.5}, headers=headers).status_code
        == 200
    )
    try:
        keys = [f"client-{i}" for i in range(40)]
        expected = {k: "staging" if _point(k) < 0.5 else "production" for k in keys}
        assert set(expected.values()) == {"staging", "production"}
        field = settings.serving.sticky_field
        by_body, by_field, header_wins = {}, {}, {}
        for key in keys:
            by_body[key] = client.post("/predict", json={"record": GOOD, "client_id": key}).json
            by_field[key] = client.post("/predict", json={"record": {**GOOD, field: key}}).json
            header_wins[key] = client.post(
                "/predict",
                json={"record": GOOD, "client_id": "someone-else"},
                headers={"X-Client-Key": key},
            ).json
        assert {k: a["variant"] for k, a in by_body.items()} == expected
        assert {k: a["variant"] for k, a in by_field.items()} == expected
        assert {k: a["variant"] for k, a in header_wins.items()} == expected
        app.extensions["driftloop"]["log"].close()
        for answers in (by_body, by_field):
            for key, answer in answers.items():
                (row,) = _logged(engine, request_id=answer["request_id"])
                assert (row.variant, row.assignment) == (expected[key], "sticky")
                assert field not in row.inputs  # the key routes; it is not a model input
    finally:
        client.put("/admin/traffic", json={"staging_weight": 0.1}, headers=headers)


def test_concurrent_one_record_requests_are_predicted_together(served, monkeypatch):
    """8 simultaneous one-record requests share fewer model calls, and each still gets its own
    record's answer. The first model call waits until the other requests are queued, so the
    next call finds them there, however slowly a loaded machine starts the threads."""
    settings, _ = served
    patient = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"micro_batch_wait_ms": 300.0})}
    )
    app = create_app(patient, background=False)
    try:
        client = app.test_client()
        production = {"X-Variant": "production"}
        records = _records(8)
        alone = [
            client.post("/predict", json={"record": r}, headers=production).json["predictions"][0]
            for r in records
        ]
        batcher = app.extensions["driftloop"]["store"].snapshot.production.batcher
        sizes: list[int] = []
        predict = batcher._predict

        def counted(frame):
            if not sizes:  # the first call: hold it until every other request is queued
                wait_until(
                    lambda: batcher._queue.qsize() + len(frame) >= len(records) or None,
                    30,
                    "the other requests to queue behind the first model call",
                    interval=0.01,
                )
            sizes.append(len(frame))
            return predict(frame)

        monkeypatch.setattr(batcher, "_predict", counted)
        start = threading.Barrier(len(records))
        answers: list = [None] * len(records)

        def send(i: int) -> None:
            start.wait()
            response = app.test_client().post(
                "/predict", json={"record": records[i]}, headers=production
            )
            answers[i] = response.json["predictions"][0]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(records))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(sizes) == len(records) and len(sizes) < len(records) and max(sizes) > 1
        for got, expected in zip(answers, alone, strict=True):
            assert got["prediction"] == expected["prediction"]
            assert got["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-12)
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_the_openapi_record_is_the_registered_production_signature(client, served):
    """The document's record is what the served version's MLflow signature says, not what the
    config says; Staging (the same model here) is not listed apart."""
    import mlflow
    from mlflow.models import Model

    settings, _ = served
    version = registry.configure(settings).get_model_version_by_alias(
        settings.model.name, registry.PRODUCTION
    )
    local = mlflow.artifacts.download_artifacts(f"models:/{settings.model.name}/{version.version}")
    columns = Model.load(local).signature.inputs.to_dict()
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    record = schemas["Record"]["properties"]
    assert list(record) == [c["name"] for c in columns] + [settings.serving.sticky_field]
    for column in columns:
        expected = (
            "number" if column["type"] in {"double", "float", "long", "integer"} else "string"
        )
        assert record[column["name"]]["type"] in (expected, [expected, "null"])
    assert "StagingRecord" not in schemas


def test_an_options_request_is_not_counted_as_a_prediction(client):
    answered = {"endpoint": "predict", "status": "200"}
    before = _sample(client, "driftloop_requests_total", answered)
    assert client.options("/predict").status_code == 200
    assert _sample(client, "driftloop_requests_total", answered) == before


def test_explain_answers_shap_values_of_the_variant_that_would_answer(client, served):
    """Per record, a value per original feature from the forced variant; the record limit is
    serving.explain_max_records; /predict's checks apply."""
    settings, engine = served
    records = _records(3)
    logged = len(_logged(engine))
    response = client.post("/explain", json={"records": records}, headers={"X-Variant": "staging"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["variant"] == "staging" and body["version"] == "2"
    assert body["quality"] == "exact" and len(body["explanations"]) == 3
    for answer in body["explanations"]:
        assert set(answer["shap"]) == set(settings.feature_columns)
        assert any(value != 0 for value in answer["shap"].values())
    assert len(_logged(engine)) == logged  # explanations are not predictions: not logged
    many = client.post(
        "/explain", json={"records": _records(settings.serving.explain_max_records + 1)}
    )
    assert many.status_code == 413 and "limit" in many.json["error"]
    bad = client.post("/explain", json={"record": {**records[0], "alcohol": "strong"}})
    assert bad.status_code == 422 and "alcohol" in str(bad.json["details"])
