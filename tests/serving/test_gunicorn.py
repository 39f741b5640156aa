"""The server under a real gunicorn process: refusals stay 4xx, metrics add up across workers,
and a promotion and a rollback are picked up under load without a failed request."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from driftloop.stack.processes import free_port, wait_until
from driftloop.stages import promotion
from driftloop.storage import Prediction, session_scope
from tests.conftest import ROOT
from tests.support.load import one_record_load, wait_for_answers
from tests.support.served_home import production_and_staging

pytestmark = pytest.mark.integration
GUNICORN = str(ROOT / ".venv/bin/gunicorn")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Version 1 in Production, version 2 in Staging."""
    with production_and_staging(tmp_path_factory.mktemp("gunicorn")) as served:
        yield served


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    """One gunicorn for the module; the load test, last, ends it with a graceful stop."""
    settings, _ = home
    tmp_path = tmp_path_factory.mktemp("gunicorn-run")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(
        DRIFTLOOP_CONFIG=str(ROOT / "driftloop.yaml"),
        DRIFTLOOP_STORAGE__HOME=str(settings.storage.home),
        DRIFTLOOP_SERVING__POLL_SECONDS="1",
        DRIFTLOOP_BIND=f"127.0.0.1:{port}",
        DRIFTLOOP_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        DRIFTLOOP_ADMIN_TOKEN="t",
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [GUNICORN, "-c", str(ROOT / "serving/gunicorn.conf.py"), "serving.app:create_app()"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, tmp_path / "gunicorn.log")
        yield url, process
    finally:  # also when start-up failed: never leave a server behind
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # refused or still loading models
            pass
        assert process.poll() is None, log_path.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"gunicorn not ready in 90 s:\n{log_path.read_text()[-3000:]}")


RECORDS = (
    pd.read_csv(ROOT / "data/wine/winequality-white.csv", sep=";")
    .drop(columns="quality")
    .head(200)
    .to_dict("records")
)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "{oops", "headers": {"Content-Type": "application/json"}}, 400),
        ({"data": "x=1"}, 415),
        ({"json": {"record": {**RECORDS[0], "pH": "acid"}}}, 422),
        ({"json": {"record": {"pH": 3.0}}}, 422),
        ({"json": {"records": []}}, 422),
        ({"json": {"records": [RECORDS[0]] * 1001}}, 413),
        ({"data": "x" * 2_100_000, "headers": {"Content-Type": "application/json"}}, 413),
    ],
)
def test_refusals_under_gunicorn_are_4xx(server, kwargs, status):
    url, _ = server
    response = requests.post(f"{url}/predict", timeout=10, **kwargs)
    assert response.status_code == status and response.json()["error"]


def _served_by(answers: list, version: str, what: str, run: int = 40) -> None:
    """Wait until the last ``run`` answers all came from ``version`` (both workers switched:
    a worker still on the old version would break the run)."""
    start = len(answers)

    def switched() -> bool | None:
        tail = answers[start:][-run:]
        return (len(tail) == run and all(b.get("version") == version for _, b in tail)) or None

    wait_until(switched, 120, what, interval=0.05)


def test_promotion_and_rollback_under_load_fail_no_request_and_every_record_is_logged(server, home):
    url, process = server
    settings, engine = home
    with one_record_load(
        url, RECORDS, clients=8, headers=lambda n, i: {"X-Variant": "production"}, timeout=10
    ) as answers:
        # each step waits for what the server answers, not for a time: a loaded machine is slow
        wait_for_answers(answers, 100, "100 answers before the promotion")
        promotion.promote(settings, engine, "test", "under load")
        _served_by(answers, "2", "the workers to answer with the promoted version 2")
        promotion.rollback(settings, engine, "test", "under load too")
        _served_by(answers, "1", "the workers to answer with version 1 again")
        settled = len(answers)
        wait_for_answers(answers, settled + 100, "100 answers after the rollback")
    seen = [  # status, version, request id, error
        (status, body.get("version", ""), body.get("request_id", ""), body.get("error", ""))
        for status, body in answers
    ]
    failures = [s for s in seen if s[0] != 200]
    assert not failures, failures[:5]
    versions = [s[1] for s in seen]
    assert versions[0] == "1" and "2" in versions  # promoted ...
    after = versions[settled:]  # ... and rolled back, and it stays that way
    assert len(after) >= 100 and after == ["1"] * len(after)
    # every 200 was counted once, whichever of the two workers answered it
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(
            requests.get(f"{url}/metrics", timeout=10).text
        )
        for sample in family.samples
    }
    answered_200 = sum(1 for s in seen if s[0] == 200)
    assert scraped[
        (
            "driftloop_requests_total",
            (("endpoint", "predict"), ("model", "wine-quality"), ("status", "200")),
        )
    ] == (answered_200)
    predicted = sum(
        value
        for (name, labels), value in scraped.items()
        if name == "driftloop_predictions_total" and dict(labels)["shadow"] == "false"
    )
    assert predicted == answered_200  # one record per request

    os.killpg(process.pid, signal.SIGTERM)  # graceful: workers drain their logs
    process.wait(60)
    answered = {s[2] for s in seen}
    with session_scope(engine) as session:
        logged = session.scalars(
            sa.select(Prediction.request_id).where(
                Prediction.status == 200, Prediction.shadow.is_(False)
            )
        ).all()
    assert answered <= set(logged)
    assert len([r for r in logged if r in answered]) == len(seen)  # one row per record answered
