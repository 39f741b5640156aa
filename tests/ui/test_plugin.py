"""The driftloop plugin in a real Airflow: the api-server mounts its app, which answers only
signed-in users; a browser signs in and reads the page inside Airflow's navigation; and the
approval flow runs end to end (ab_evaluate -> Asset event -> ab_approval's human-in-the-loop
task -> an answer through Airflow's REST API, or none before the timeout).

One Airflow (scheduler, dag-processor, triggerer, api-server on PostgreSQL) serves the whole
module; driftloop's own database is PostgreSQL too, MLflow an SQLite store both sides share.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import AirflowSettings, Settings
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.processes import wait_until
from driftloop.stages.ab_evaluation import evaluate
from driftloop.stages.approval import answer_in_airflow, pending, recent
from driftloop.stages.promotion import history, roles
from driftloop.storage import make_engine
from driftloop.vocabulary import ApprovalChoice
from tests.conftest import ROOT
from tests.support import loop_rows
from tests.support.ab_traffic import send
from tests.support.postgres import require_postgres, temporary_database
from tests.support.registry_home import production_and_staging

pytestmark = pytest.mark.integration
USERS = {"admin": ("admin", "admin-pass"), "alice": ("op", "alice-pass"), "val": ("viewer", "v")}
# Each approval carries its own deadline (the ab_evaluate run's approval_timeout_hours), so one
# stack tests both sides without racing either: the approval a person answers waits an hour
# (the stack's default), the one the test lets expire 20 s (waited out, never raced).
TIMEOUT_HOURS = 1.0
EXPIRES_IN_SECONDS = 20


@dataclass
class Loop:
    stack: AirflowStack
    settings: Settings
    engine: sa.Engine
    production: str
    staging: str
    drift_ids: list[int]
    evaluation_id: int

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{self.stack.base_url}{path}", headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    require_postgres()
    home = tmp_path_factory.mktemp("plugin")
    with (
        temporary_database("airflow_plugin") as airflow_url,
        temporary_database("driftloop_plugin") as driftloop_url,
    ):
        overrides = {
            "storage": {"home": home / "driftloop"},
            "database": {"url": driftloop_url},
            "ab": {
                "approval": "required",
                "approval_timeout_hours": TIMEOUT_HOURS,
                "approvers": ["alice"],
                "schedule": None,
            },
        }
        settings = load_settings(ROOT / "driftloop.yaml", **overrides)
        env = {
            "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
            "DRIFTLOOP_STORAGE__HOME": str(home / "driftloop"),
            "DRIFTLOOP_DATABASE__URL": driftloop_url,
            "DRIFTLOOP_AB__APPROVAL": "required",
            "DRIFTLOOP_AB__APPROVAL_TIMEOUT_HOURS": str(TIMEOUT_HOURS),
            "DRIFTLOOP_AB__APPROVERS": '["alice"]',
            # nothing runs on a schedule: the test starts each run
            "DRIFTLOOP_AB__SCHEDULE": "null",
            "DRIFTLOOP_DRIFT__SCHEDULE": "null",
            "DRIFTLOOP_SCORING__SCHEDULE": "null",
            # the scheduler looks for expired human-in-the-loop tasks every 2 s, not 15 s
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        }
        engine = make_engine(driftloop_url)
        upgrade(engine)
        production, staging = production_and_staging(settings)
        start = datetime.now(UTC) - timedelta(hours=1)  # one start: both variants count whole
        send(settings, engine, registry.PRODUCTION, production, 1500, 0.55, seed=1, start=start)
        send(settings, engine, registry.STAGING, staging, 1500, 0.70, seed=2, start=start)
        look = evaluate(settings, engine, act=False)  # the page's A/B numbers; nothing moves
        name = settings.model.name
        drift_ids = loop_rows.drift_checks(engine, name, home / "reports", [0.1, 0.2, 0.6])
        loop_rows.retrain_run(engine, name, staging, drift_ids[-1])
        stack = AirflowStack(
            ROOT / "dags",
            home / "airflow",
            airflow_url,
            extra_env=env,
            users=USERS,
            plugins_folder=ROOT / "plugins",
        )
        with stack:
            yield Loop(stack, settings, engine, production, staging, drift_ids, look.evaluation_id)
        engine.dispose()


@pytest.mark.timeout(600)
def test_the_plugin_answers_signed_in_users_only(loop: Loop) -> None:
    plugins = loop.stack.api("GET", "/plugins")["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "driftloop"]
    assert plugin["external_views"][0]["url_route"] == "driftloop"
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/driftloop"

    report = f"/driftloop/reports/drift/{loop.drift_ids[-1]}"
    name = loop.settings.model.name
    for path in (
        "/driftloop/",
        "/driftloop/api/overview",
        report,
        "/driftloop/api/models",
        f"/driftloop/models/{name}/",
    ):
        assert loop.get(path).status_code == 401, path
        assert loop.get(path, token="not-a-jwt").status_code == 403, path

    viewer = loop.stack.token("val", USERS["val"][1])
    overview = loop.get("/driftloop/api/overview", viewer)
    assert overview.status_code == 200, overview.text
    view = overview.json()
    assert view["versions"]["production"]["version"] == loop.production
    assert view["versions"]["staging"]["version"] == loop.staging
    assert view["traffic"] == {"staging_weight": 0.1, "shadow": False}
    assert view["mlflow_ui"] is None  # an embedded store has no UI to link to
    latest_check = view["drift"]["checks"][0]
    assert latest_check["status"] == "drift" and latest_check["drifted_features"] == [
        "alcohol",
        "pH",
    ]
    assert [p["share"] for p in view["drift"]["share_over_time"]] == [0.1, 0.2, 0.6]
    numbers = view["ab"]["latest"]
    assert numbers["variants"]["staging"]["with_feedback"] == 1500
    assert numbers["variants"]["production"]["with_feedback"] == 1500
    assert numbers["p_value"] is not None and numbers["p_value"] < 0.05
    assert view["ab"]["decisions"][0]["decision"] == "promote"
    assert view["retrains"][0]["decision"] == "staging"
    # a config of one model: one row, and the model's own route gives the same view
    (row,) = loop.get("/driftloop/api/models", viewer).json()
    assert (row["model"], row["production"], row["staging"]) == (
        name,
        loop.production,
        loop.staging,
    )
    assert row["drift"]["id"] == loop.drift_ids[-1] and row["error"] is None
    assert loop.get(f"/driftloop/models/{name}/api/overview", viewer).json()["model"] == name

    page = loop.get("/driftloop/", cookies={"_token": viewer})  # as the UI's iframe asks
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for text in (f"v{loop.production}", f"v{loop.staging}", "Always-valid p-value", "alcohol, pH"):
        assert text in page.text, text
    assert f"/driftloop/reports/drift/{loop.drift_ids[-1]}" in page.text

    served = loop.get(report, viewer)
    assert served.status_code == 200 and "drift report of batch 2" in served.text
    assert loop.get(f"/driftloop/reports/ab/{loop.evaluation_id}", viewer).status_code == 200
    missing = loop.get("/driftloop/reports/drift/999999", viewer)
    assert missing.status_code == 404 and "no drift report #999999" in missing.text


@pytest.mark.timeout(300)
def test_a_browser_signs_in_and_reads_the_driftloop_page(loop: Loop, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            raise RuntimeError("CI is set but chromium or chromedriver is missing (see .ci/run)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1600")
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    try:
        wait = WebDriverWait(browser, 60)
        browser.get(f"{loop.stack.base_url}/plugin/driftloop")  # not signed in: the login form
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name=username]")))
        browser.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys("val")
        browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(USERS["val"][1])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda b: "/auth/login" not in b.current_url)
        if "/plugin/driftloop" not in browser.current_url:
            browser.get(f"{loop.stack.base_url}/plugin/driftloop")
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
        assert "/driftloop/" in frame.get_attribute("src")
        browser.switch_to.frame(frame)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=drift-share]")))

        def text(test_id: str) -> str:
            return browser.find_element(By.CSS_SELECTOR, f"[data-testid={test_id}]").text

        assert text("production-version") == f"v{loop.production}"
        assert text("staging-version") == f"v{loop.staging}"
        assert text("drift-verdict") == "drift"
        assert text("staging-feedback") == "1500" and text("production-feedback") == "1500"
        assert float(text("ab-p-value")) < 0.05
        browser.switch_to.default_content()
        shot = tmp_path / "driftloop-page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()


@pytest.mark.timeout(600)
def test_a_promotion_waits_for_a_person_in_airflow(loop: Loop) -> None:
    stack, settings = loop.stack, loop.settings
    for dag_id in ("ab_evaluate", "ab_approval"):
        stack.wait_for_dag(dag_id)
        stack.unpause(dag_id)
    # alice answers through the REST API as `driftloop promote` would: airflow.api_url + token
    airflow = {"api_url": stack.base_url, "token": stack.token("alice", USERS["alice"][1])}
    as_alice = settings.model_copy(update={"airflow": AirflowSettings(**airflow)})

    # nobody answers in time: the approval expires, nothing moves, and the run says so
    first = _asked(loop, already=0, timeout_hours=EXPIRES_IN_SECONDS / 3600)
    assert stack.wait_for_run("ab_approval", first, timeout=240) == "success"
    states = {t["task_id"]: t["state"] for t in stack.task_instances("ab_approval", first)}
    assert states == {"describe": "success", "wait_for_person": "failed", "settle": "success"}
    expired = recent(loop.engine, 1)[0]
    assert expired.status == "expired" and expired.responded_by is None
    asked_at, deadline = (
        datetime.fromisoformat(t) for t in (expired.requested_at, expired.expires_at)
    )
    assert timedelta(0) < deadline - asked_at < timedelta(seconds=EXPIRES_IN_SECONDS + 120)
    assert roles(settings) == (loop.production, loop.staging)
    assert history(loop.engine, settings.model.name)[0]["action"] == "expired"
    # an answer after the deadline: Airflow recorded the task's default (Reject, by nobody) at
    # the deadline, so it refuses the late answer instead of storing one nothing would read
    late = answer_in_airflow(as_alice, expired, ApprovalChoice.APPROVE, "too late")
    assert "Airflow refused the answer (409" in late, late
    recorded = stack.api("GET", _details_path(first))
    assert recorded["chosen_options"] == ["Reject"] and recorded["responded_by_user"] is None
    assert recent(loop.engine, 1)[0].status == "expired"
    assert roles(settings) == (loop.production, loop.staging)

    # the test goes on: the next look asks again (an hour to answer), and alice approves
    second = _asked(loop, already=1)
    path = _details_path(second)
    _awaiting_input(loop, second)
    asked = stack.api("GET", path)  # what the person sees under Required Actions
    assert asked["subject"] == f"Promote Staging v{loop.staging} to Production?"
    assert "Staging is better" in asked["body"] and asked["options"] == ["Approve", "Reject"]
    assert asked["assigned_users"] == [{"id": "alice", "name": "alice"}]
    answer = {"chosen_options": ["Approve"], "params_input": {"comment": "numbers hold up"}}
    not_assigned = stack.request("PATCH", path, json=answer)  # the stack signs in as admin
    assert not_assigned.status_code == 403, not_assigned.text
    (waiting,) = pending(loop.engine)
    assert datetime.fromisoformat(waiting.expires_at) - datetime.now(UTC) > timedelta(minutes=30)
    said = answer_in_airflow(as_alice, waiting, ApprovalChoice.APPROVE, "numbers hold up")
    assert said == f"answered approval #{waiting.id} in Airflow: Approve (run {second})"
    assert stack.wait_for_run("ab_approval", second, timeout=180) == "success"
    states = {t["task_id"]: t["state"] for t in stack.task_instances("ab_approval", second)}
    assert states == {"describe": "success", "wait_for_person": "success", "settle": "success"}
    assert recent(loop.engine, 1)[0].status == "approved"
    assert roles(settings) == (loop.staging, None)
    audit = history(loop.engine, settings.model.name)[0]
    assert audit["action"] == "promote" and audit["actor"] == "airflow:alice"
    assert "alice chose Approve: numbers hold up" in audit["reason"]
    settled = recent(loop.engine, 1)[0]
    assert settled.status == "approved" and settled.comment == "numbers hold up"


def _details_path(run_id: str) -> str:
    return f"/dags/ab_approval/dagRuns/{run_id}/taskInstances/wait_for_person/-1/hitlDetails"


def _asked(loop: Loop, already: int, timeout_hours: float | None = None) -> str:
    """Run ab_evaluate (the person gets ``timeout_hours``, else the default); return the
    ab_approval run its approval event started."""
    stack = loop.stack
    conf = {} if timeout_hours is None else {"approval_timeout_hours": timeout_hours}
    run = stack.trigger("ab_evaluate", conf)
    assert stack.wait_for_run("ab_evaluate", run, timeout=240) == "success"
    states = {t["task_id"]: t["state"] for t in stack.task_instances("ab_evaluate", run)}
    assert states["ask_for_approval"] == "success", states
    assert roles(loop.settings) == (loop.production, loop.staging)  # traffic stays as it is
    runs = wait_until(
        lambda: (r := stack.dag_runs("ab_approval")) and len(r) > already and r,
        120,
        "the approval event to start ab_approval",
    )
    return str(runs[already]["dag_run_id"])


def _awaiting_input(loop: Loop, run_id: str) -> None:
    def parked() -> bool | None:
        tasks = loop.stack.task_instances("ab_approval", run_id)
        return (
            any(t["task_id"] == "wait_for_person" and t["state"] == "awaiting_input" for t in tasks)
            or None
        )

    wait_until(parked, 60, f"run {run_id} to wait for a person")
