"""The plugin's routes (``plugins/driftloop_ui/app.py``) on a config of several models, through
FastAPI's test client in this process: the page opens on the overview of every model, each
row links that model's own page, and a route that needs a model says which to name. Signing in
through Airflow's auth manager is tested against a real Airflow (``test_plugin.py``); here the
auth dependency is lifted."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT
from tests.support.many_models import ManyModels


@pytest.fixture
def client(
    models_config: ManyModels, monkeypatch: pytest.MonkeyPatch, tmp_path_factory
) -> Iterator[TestClient]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    monkeypatch.setenv("DRIFTLOOP_CONFIG", str(models_config.config))
    monkeypatch.syspath_prepend(str(ROOT / "plugins"))
    from driftloop_ui import app as plugin

    plugin._deployment.cache_clear()
    app = plugin.create_app()
    (auth,) = app.router.dependencies
    app.dependency_overrides[auth.dependency] = lambda: None
    with TestClient(app, root_path="/driftloop") as client:
        yield client
    plugin._deployment().close()
    plugin._deployment.cache_clear()


def test_the_page_opens_on_every_model_and_links_each_page(
    client: TestClient, models_config: ManyModels
):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "driftloop: 3 models" in page.text
    links = re.findall(r"<a href='([^']+)' data-testid='model-link'>([^<]+)</a>", page.text)
    assert links == [
        (f"/driftloop/models/{name}/", name) for name in ("white_wine", "red_wine", "white_alcohol")
    ]
    rows = page.text.split("data-testid='model-link'")[1:]
    assert "v1" in rows[0] and "v2" in rows[0] and "running" in rows[0]
    assert "no_drift" in rows[1] and "promoted" in rows[1]
    assert rows[2].count(">none<") == 3  # no Production, no Staging, no A/B test
    assert [row["model"] for row in client.get("/api/models").json()] == [
        "white_wine",
        "red_wine",
        "white_alcohol",
    ]

    white = client.get("/models/white_wine/")
    assert white.status_code == 200 and "driftloop: white_wine" in white.text
    assert "href='/driftloop/'>&larr; all models" in white.text
    report = f"/driftloop/models/white_wine/reports/drift/{models_config.white_drift_ids[-1]}"
    assert f"href='{report}'" in white.text
    served = client.get(report.removeprefix("/driftloop"))
    assert served.status_code == 200 and "drift report of batch 1" in served.text
    json_view = client.get("/models/red_wine/api/overview").json()
    assert json_view["model"] == "red_wine" and json_view["versions"]["staging"] is None


def test_routes_of_one_model_say_which_to_name(client: TestClient, models_config: ManyModels):
    names = "(white_wine, red_wine, white_alcohol)"
    asked = client.get("/api/overview")
    assert asked.status_code == 400
    assert names in asked.json()["detail"]
    assert asked.json()["detail"].endswith("ask /driftloop/models/<name>/api/overview")
    report = client.get(f"/reports/drift/{models_config.white_drift_ids[-1]}")
    assert report.status_code == 400 and "/driftloop/models/<name>/reports/drift/" in report.text
    unknown = client.get("/models/white/")
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("no model 'white': ")
    # another model's report is not served under this one's name
    other = client.get(f"/models/red_wine/reports/drift/{models_config.white_drift_ids[-1]}")
    assert other.status_code == 404
