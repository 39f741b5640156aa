"""Security as tests (issue 28, docs/security.md): every admin route, listed from the server's
own OpenAPI document, refuses a missing and a wrong token (and every keyed route a missing and
a wrong key); tokens, keys and passwords never show in ``driftloop config show``, the server's
logs, its ``/metrics``, the prediction log, or an alert's warning."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from driftloop.settings_loader import load_settings
from driftloop.stack.processes import free_port
from driftloop.stages import alerts
from serving.app import create_app
from tests.conftest import ROOT
from tests.support.cli import Cli, clean_env

ADMIN_TOKEN = "adm1n-T0ken-9f2c"
API_KEY = "api-K3y-77ab"
DB_PASSWORD = "pg-Passw0rd-31x"
MLFLOW_PASSWORD = "mlf-Pw-12yz"
AIRFLOW_TOKEN = "jwt-airflow-55q"
WEBHOOK_SECRET = "T000/B000/hookSecret99"
SECRETS = (ADMIN_TOKEN, API_KEY, DB_PASSWORD, MLFLOW_PASSWORD, AIRFLOW_TOKEN, "hookSecret99")


@pytest.fixture
def app(settings, monkeypatch):
    """A server with the admin token and API keys set (keys required), no model registered:
    authentication comes before anything a model would do."""
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("DRIFTLOOP_API_KEYS", f"other-key,{API_KEY}")
    strict = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"require_api_key": True})}
    )
    app = create_app(strict, background=False)
    yield app
    app.extensions["driftloop"]["shutdown"]()


def _operations(app, scheme: str) -> list[tuple[str, str]]:
    """(method, path) of every documented operation that the OpenAPI document says needs
    ``scheme``; path parameters filled with a placeholder."""
    spec = app.test_client().get("/openapi.json").get_json()
    found = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if {scheme: []} in operation.get("security", []):
                found.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return found


def test_every_admin_route_refuses_a_missing_and_a_wrong_token(app):
    admin = _operations(app, "admin")
    # a route under /admin that is not documented as admin-only fails here, not in production
    rules = {
        re.sub(r"<[^>]+>", "x", r.rule)  # a model's admin routes: its name a placeholder
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/admin")
    }
    assert rules and rules <= {path for _, path in admin}
    client = app.test_client()
    for method, path in admin:
        call = getattr(client, method)
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"X-API-Key": API_KEY},  # a client's key is not the admin token
        ):
            answer = call(path, headers=headers, json={"staging_weight": 0.5})
            assert answer.status_code == 401, (method, path, headers, answer.get_json())
            assert ADMIN_TOKEN not in answer.get_data(as_text=True)
        reload = call(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, json={})
        assert reload.status_code not in (401, 403), (method, path)


def test_admin_routes_are_closed_when_no_token_is_set(settings, monkeypatch):
    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)
    app = create_app(settings, background=False)
    try:
        client = app.test_client()
        for method, path in _operations(app, "admin"):
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
                assert getattr(client, method)(path, headers=headers).status_code == 403
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_every_keyed_route_refuses_a_missing_and_a_wrong_key(app):
    keyed = _operations(app, "apiKey")
    assert {path for _, path in keyed} >= {"/predict", "/feedback"}
    client = app.test_client()
    for method, path in keyed:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": f"{API_KEY} "}):
            answer = getattr(client, method)(path, headers=headers, json={"record": {}})
            assert answer.status_code == 401, (method, path, headers)
        answer = getattr(client, method)(path, headers={"X-API-Key": API_KEY}, json={})
        assert answer.status_code != 401, (method, path)


def test_secrets_never_reach_logs_metrics_or_the_prediction_log(app, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}-wrong"})
    client.post("/predict", headers={"X-API-Key": API_KEY}, json={"record": {"a": 1}})
    client.post("/predict", headers={"X-API-Key": f"{API_KEY}-wrong"}, json={"record": {}})
    metrics = client.get("/metrics").get_data(as_text=True)
    served = app.extensions["driftloop"]
    served["log"].close()  # the rows of the refused requests are written
    with served["engine"].connect() as connection:
        rows = connection.execute(sa.text("select * from predictions")).fetchall()
    out, err = capfd.readouterr()
    assert rows and "driftloop_" in metrics  # the places looked at are not empty
    seen = "\n".join([caplog.text, metrics, out, err, *map(str, rows)])
    for secret in (ADMIN_TOKEN, API_KEY):
        assert secret not in seen


def test_config_show_masks_passwords_tokens_and_webhook_paths(tmp_path):
    cli = Cli(clean_env(tmp_path / "home"), tmp_path)
    environment = {
        "DRIFTLOOP_DATABASE__URL": f"postgresql+psycopg2://dl:{DB_PASSWORD}@db.internal:5432/dl",
        "DRIFTLOOP_MLFLOW__TRACKING_URI": f"https://ml:{MLFLOW_PASSWORD}@mlflow.internal",
        "DRIFTLOOP_ALERTS__WEBHOOK_URL": f"https://hooks.example.com/services/{WEBHOOK_SECRET}",
        "DRIFTLOOP_AIRFLOW__API_URL": "http://airflow.internal:8080",
        "DRIFTLOOP_AIRFLOW__TOKEN": AIRFLOW_TOKEN,
        "DRIFTLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
        "DRIFTLOOP_API_KEYS": API_KEY,
    }
    shown = cli("config", "show", **environment)
    for secret in SECRETS:
        assert secret not in shown
    # masked, not dropped: an operator still sees where each service is
    for where in ("dl:***@db.internal:5432/dl", "ml:***@mlflow.internal", "hooks.example.com/***"):
        assert where in shown


def test_a_failed_alert_is_logged_without_the_webhook_path(tmp_path, caplog):
    settings = load_settings(
        ROOT / "driftloop.yaml",
        storage={"home": tmp_path / "home"},
        alerts={"webhook_url": f"http://127.0.0.1:{free_port()}/{WEBHOOK_SECRET}", "attempts": 1},
    )
    assert alerts.send(settings, "promoted", "x") is False
    assert "not delivered" in caplog.text and "ConnectionError" in caplog.text
    assert "hookSecret99" not in caplog.text
