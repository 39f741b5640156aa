"""The read model behind the plugin's page, the page itself, and the plugin file's import cost
(Airflow imports plugins in every component)."""

from __future__ import annotations

import os
import subprocess

from driftloop.schema import upgrade
from driftloop.storage import make_engine
from driftloop.ui.overview import mlflow_ui, overview, report_path
from driftloop.ui.overview_page import render_page
from tests.conftest import ROOT
from tests.support import loop_rows

PYTHON = str(ROOT / ".venv/bin/python")


def test_an_empty_loop_renders_a_page_that_says_so(settings):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    view = overview(settings, engine)
    assert view["versions"] == {"production": None, "staging": None}
    assert view["ab"] is None and view["retrains"] == [] and view["drift"]["checks"] == []
    page = render_page(view, "/driftloop")
    assert "no A/B test yet" in page and "no drift check has measured a share yet" in page


def test_values_are_escaped_and_reports_go_by_id(settings, tmp_path):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    (check_id,) = loop_rows.drift_checks(engine, settings.model.name, tmp_path / "reports", [0.7])
    view = overview(settings, engine)
    view["drift"]["checks"][0]["batch"] = "<script>alert(1)</script>.csv"
    page = render_page(view, "/driftloop")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert f"href='/driftloop/reports/drift/{check_id}'" in page
    assert (
        report_path(engine, "drift", check_id, settings.model.name).read_text().startswith("<html>")
    )
    for kind, missing in (("drift", 999), ("ab", check_id)):
        try:
            report_path(engine, kind, missing, settings.model.name)
        except LookupError as exc:
            assert f"no {kind} report #{missing}" in str(exc)
        else:
            raise AssertionError(f"{kind} report #{missing} should not exist")


def test_mlflow_links_only_for_a_tracking_server(settings):
    assert mlflow_ui(settings) is None  # the embedded SQLite store has no UI
    server = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": "http://ml:5000/"})}
    )
    assert mlflow_ui(server) == "http://ml:5000"
    view = {
        "model": "m",
        "mlflow_ui": "http://ml:5000",
        "versions": {
            "production": {"version": "3", "url": "http://ml:5000/#/models/m/versions/3"},
            "staging": None,
        },
        "traffic": {"staging_weight": 0.25, "shadow": True},
        "drift": {"checks": [], "share_over_time": []},
        "ab": None,
        "approvals": [],
        "audit": [],
        "retrains": [],
    }
    page = render_page(view, "/driftloop")
    assert "href='http://ml:5000/#/models/m/versions/3'" in page and "MLflow UI" in page
    assert "25%" in page and "shadow on" in page


def test_airflow_loads_the_plugin_without_importing_driftloop(tmp_path):
    """Loading plugins (every Airflow component does) builds no app and imports neither the
    library nor MLflow or pandas; the api-server's app is built on its first request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DRIFTLOOP_"))}
    env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    env["AIRFLOW_HOME"] = str(tmp_path)
    code = (
        "import sys\n"
        "from airflow import plugins_manager\n"
        "apps, _ = plugins_manager.get_fastapi_plugins()\n"
        "views, _ = plugins_manager._get_ui_plugins()\n"
        "print([a['url_prefix'] for a in apps], [v['url_route'] for v in views])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('driftloop', 'driftloop_ui', 'mlflow', 'pandas')))\n"
    )
    done = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    mounted, heavy = done.stdout.strip().splitlines()[-2:]
    assert mounted == "['/driftloop'] ['driftloop']"
    assert heavy == "[]"


def test_an_unreachable_registry_hides_only_the_versions(settings, monkeypatch):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    away = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": "http://127.0.0.1:9"})}
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a closed port: fail at once
    view = overview(away, engine)
    assert view["versions"]["production"] is None and "MLflow registry" in view["versions"]["error"]
    assert "MLflow registry" in render_page(view, "/driftloop")
