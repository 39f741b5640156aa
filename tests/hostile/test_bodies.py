"""No 5xx from any body: whatever a client sends to /predict, /feedback and the admin routes,
with or without valid keys and tokens, the answer is a 4xx with a sentence or a success.

The named cases first (one per kind of hostile input), then a Hypothesis property test that
posts generated JSON and non-JSON bodies with generated headers. The same strategies drive the
gunicorn run in ``test_hostile_bodies_gunicorn.py``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from tests.support.hostile import (
    ADMIN,
    API_KEY,
    ROUTES,
    assert_refused_politely,
    good_record,
    requests_for,
)
from tests.support.served_home import production_and_staging

EXAMPLES_IN_PROCESS = 500


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with production_and_staging(tmp_path_factory.mktemp("hostile")) as served:
        yield served


@pytest.fixture(scope="module")
def app(served):
    """API keys required and an admin token set, so both the right and the wrong ones count."""
    settings, _engine = served
    strict = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"require_api_key": True})}
    )
    patch = pytest.MonkeyPatch()
    patch.setenv("DRIFTLOOP_ADMIN_TOKEN", ADMIN)
    patch.setenv("DRIFTLOOP_API_KEYS", API_KEY)
    app = create_app(strict, background=False)
    yield app
    app.extensions["driftloop"]["shutdown"]()
    patch.undo()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def _post(client, path: str, body: bytes, headers: dict | None = None, method: str = "POST"):
    return client.open(
        path,
        method=method,
        data=body,
        headers={"X-API-Key": API_KEY, "Content-Type": "application/json", **(headers or {})},
    )


def _record_with(alcohol: bytes) -> bytes:
    """A good record whose alcohol is the raw JSON text ``alcohol``."""
    body = json.dumps({"record": {**good_record(), "alcohol": "@"}}).encode()
    return body.replace(b'"@"', alcohol)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"[" * 5_000 + b"]" * 5_000, 400, "nested too deeply"),
        (b'{"record": ' * 3_000 + b"1" + b"}" * 3_000, 400, "nested too deeply"),
        (_record_with(b"9" * 5_000), 400, "4300 digits"),
        (_record_with(b"1e999999"), 422, "field 'alcohol' is not a finite number"),
        (_record_with(b'"\xff\xfe"'), 400, "not UTF-8"),
        (_record_with(b'"\\ud800"'), 400, "unpaired UTF-16 surrogate"),
        (_record_with(b"NaN"), 422, "field 'alcohol' is not a finite number"),
        (b"x" * 2_100_000, 413, "larger than 2000000 bytes"),
        (b"", 400, "not valid JSON"),
    ],
)
def test_each_kind_of_hostile_body_gets_a_4xx_with_a_sentence(client, body, status, fragment):
    response = _post(client, "/predict", body)
    assert response.status_code == status, response.json
    assert fragment in " ".join([response.json["error"], *response.json["details"]])


def test_deep_nesting_inside_a_record_is_named_not_recursed_into(client):
    nested = "[" * 1_000 + "]" * 1_000  # within orjson's depth: reaches validation
    body = json.dumps({"record": {**good_record(), "alcohol": 0}}).replace("0}", nested + "}")
    response = _post(client, "/predict", body.encode())
    assert response.status_code == 422 and "field 'alcohol' is not a number" in str(response.json)
    assert len(response.get_data()) < 2_000  # the value is quoted short


def test_duplicate_keys_are_accepted_and_the_last_one_wins(client):
    good, bad = json.dumps(good_record()), json.dumps({"alcohol": "strong"})
    last_good = _post(client, "/predict", f'{{"record": {bad}, "record": {good}}}'.encode())
    assert last_good.status_code == 200
    last_bad = _post(client, "/predict", f'{{"record": {good}, "record": {bad}}}'.encode())
    assert last_bad.status_code == 422


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_that_is_not_declared_json_gets_415(client, content_type):
    response = _post(client, "/predict", b"{}", {"Content-Type": content_type})
    assert (
        response.status_code == 415 and "Content-Type: application/json" in response.json["error"]
    )


def test_secrets_with_non_ascii_characters_are_refused_not_crashed_on(client):
    assert _post(client, "/admin/reload", b"", {"Authorization": "Bearer é"}).status_code == 401
    assert _post(client, "/feedback", b"{}", {"X-API-Key": "clé"}).status_code == 401


@pytest.mark.parametrize(
    ("path", "method", "body", "fragment"),
    [
        ("/feedback", "POST", b'{"record_id": "a", "value": NaN}', "finite number or a label"),
        ("/feedback", "POST", b'{"record_id": "a\\u0000", "value": 1}', "record_id"),
        ("/admin/traffic", "PUT", b'{"staging_weight": ' + b"1" * 400 + b"}", "too large"),
        ("/admin/traffic", "PUT", b'{"staging_weight": NaN}', "between 0 and 1"),
    ],
)
def test_numbers_and_ids_no_store_can_keep_are_refused(client, path, method, body, fragment):
    headers = {"Authorization": f"Bearer {ADMIN}"}
    response = _post(client, path, body, headers, method=method)
    assert response.status_code == 422, response.json
    assert fragment in " ".join([response.json["error"], *response.json["details"]])


@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(
    max_examples=EXAMPLES_IN_PROCESS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_body_or_header_gets_a_5xx(client, app, method, path, data):
    request = data.draw(requests_for(path))
    response = client.open(path, method=method, data=request.body, headers=request.headers)
    assert_refused_politely(response.status_code, response.get_json(silent=True), request)


def test_the_server_still_serves_after_the_property_test(client, app):
    response = _post(client, "/predict", json.dumps({"record": good_record()}).encode())
    assert response.status_code == 200
    assert app.extensions["driftloop"]["log"]._process.poll() is None  # the log writer lives
