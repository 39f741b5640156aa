"""First use without ceremony: the embedded database appears by itself (once, under a lock, even
with several processes starting together), training prints no font warnings, the CLI gives up
on an unreachable MLflow quickly, and the server lists its reports."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from driftloop.database import open_database
from driftloop.schema import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from driftloop.storage import ABEvaluation, ABTest, Batch, DriftCheck, make_engine, session_scope
from tests.conftest import ROOT

OPEN_IN_A_PROCESS = """
import sys
from driftloop.settings_loader import load_settings
from driftloop.database import open_database
settings = load_settings(sys.argv[1], storage={"home": sys.argv[2]})
print(open_database(settings).url)
"""


def test_a_new_embedded_database_is_created_at_head_on_first_use(settings):
    assert not (settings.storage.home / "driftloop.db").exists()
    engine = open_database(settings)
    assert current_revision(engine) == head_revision()
    assert {"batches", "predictions", VERSION_TABLE} <= set(sa.inspect(engine).get_table_names())
    open_database(settings).dispose()  # the second time is the everyday path: nothing to do
    engine.dispose()


def test_several_processes_starting_at_once_create_it_once(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_IN_A_PROCESS, str(ROOT / "driftloop.yaml"), str(home)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in starters]
    assert all(code == 0 for code, _out, _err in outcomes), outcomes
    engine = make_engine(f"sqlite:///{home / 'driftloop.db'}")
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:  # one revision row: nobody migrated over another
        assert connection.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
    engine.dispose()


def test_an_older_embedded_database_still_needs_an_explicit_upgrade(settings):
    engine = open_database(settings)
    downgrade(engine, "-1")
    older = current_revision(engine)
    assert older is not None and older != head_revision()
    with pytest.raises(RuntimeError, match=rf"at revision {older}.*run `driftloop db upgrade`"):
        open_database(settings)
    assert current_revision(engine) == older  # left as it was
    downgrade(engine, "base")  # only the version table is left: that is not "new" either
    with pytest.raises(RuntimeError, match="driftloop db upgrade"):
        open_database(settings)
    engine.dispose()


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_a_configured_database_is_never_created_behind_the_operators_back(
    settings, tmp_path, kind, request
):
    url = (
        f"sqlite:///{tmp_path / 'explicit.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    configured = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}
    )
    with pytest.raises(RuntimeError, match=r"is at revision none.*run `driftloop db upgrade`"):
        open_database(configured)
    engine = make_engine(url)
    assert sa.inspect(engine).get_table_names() == []
    upgrade(engine)
    open_database(configured).dispose()  # after the explicit upgrade it opens
    engine.dispose()


def test_training_prints_no_font_warnings(settings, caplog):
    """PyCaret imports yellowbrick, which asks matplotlib for fonts a server rarely has."""
    from driftloop.stages import retrain as steps

    fast = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"models": ["dt"], "folds": 2, "budget_minutes": 0.5}
            )
        }
    )
    caplog.set_level(logging.WARNING, logger="matplotlib")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decision = steps.bootstrap(fast, open_database(fast))
    assert decision.outcome == "production"
    import matplotlib

    assert matplotlib.rcParams["font.sans-serif"] == ["DejaVu Sans"]
    fonts = [r.getMessage() for r in caplog.records if "font" in r.getMessage().lower()]
    assert fonts == []
    assert [str(w.message) for w in caught if "font" in str(w.message).lower()] == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_the_cli_gives_up_on_an_unreachable_mlflow_within_seconds(settings, monkeypatch, capsys):
    from driftloop import cli

    for name in cli.MLFLOW_PATIENCE:  # MLflow's own defaults unless the CLI sets its own
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    port = _closed_port()
    monkeypatch.setenv("DRIFTLOOP_STORAGE__HOME", str(settings.storage.home))
    monkeypatch.setenv("DRIFTLOOP_MLFLOW__TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(
        sys, "argv", ["driftloop", "--config", str(ROOT / "driftloop.yaml"), "models"]
    )
    import mlflow  # noqa: F401  (imported before the clock starts: the bound is on waiting)

    started = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        cli.main()
    elapsed = time.monotonic() - started
    error = capsys.readouterr().err.strip()
    assert exited.value.code == 1
    # MLflow's own patience (7 retries, backoff factor 2, 120 s timeout) waits about four
    # minutes; the CLI's takes seconds. A minute tells them apart on any loaded machine.
    assert {name: os.environ[name] for name in cli.MLFLOW_PATIENCE} == cli.MLFLOW_PATIENCE
    assert elapsed < 60, f"gave up after {elapsed:.1f} s"
    assert error.startswith(
        f"error: the MLflow server at http://127.0.0.1:{port} does not answer; retry once"
    )
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_the_server_lists_reports_newest_first_with_their_verdicts(settings):
    from serving.app import create_app

    app = create_app(settings, background=False)  # also: the server creates the database
    engine = app.extensions["driftloop"]["engine"]
    reports = settings.storage.reports_dir
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        for i, status in enumerate(["no_drift", "drift"]):
            html = reports / "drift" / f"check-{i}.html"
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(f"<h1>drift check {i}</h1>")
            batch = Batch(
                model_name=settings.model.name, name=f"batch-{i}.csv", digest=str(i) * 64,
                path="x", status="accepted", batch_time=start,
            )  # fmt: skip
            session.add(batch)
            session.flush()
            session.add(
                DriftCheck(
                    model_name=settings.model.name, batch_id=batch.id, status=status,
                    html_path=str(html),
                    drifted_features=["alcohol"] if status == "drift" else [],
                    created_at=start + timedelta(hours=2 * i),
                )
            )  # fmt: skip
        test = ABTest(
            model_name=settings.model.name, production_version="1", staging_version="2",
            status="running", started_at=start,
        )  # fmt: skip
        session.add(test)
        session.flush()
        html = reports / "ab" / "evaluation.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text("<h1>A/B</h1>")
        session.add(
            ABEvaluation(
                test_id=test.id, decision="promote", reason="better", metric="accuracy",
                production_samples=10, staging_samples=10, html_path=str(html),
                created_at=start + timedelta(hours=1),
            )
        )  # fmt: skip
    try:
        client = app.test_client()
        page = client.get("/reports/")
        assert page.status_code == 200 and page.content_type.startswith("text/html")
        text = page.get_data(as_text=True)
        order = [text.index(s) for s in ("check-1.html", "evaluation.html", "check-0.html")]
        assert order == sorted(order)  # newest first: drift (02:00), A/B (01:00), drift (00:00)
        for verdict in ("drift", "promote", "no_drift"):
            assert f">{verdict}</span>" in text
        # the links are relative to /reports/ and answer
        assert client.get("/reports/drift/check-1.html").get_data(as_text=True).startswith("<h1>")
        assert client.get("/reports/ab/evaluation.html").status_code == 200
        assert client.get("/reports").status_code == 308  # the demo's link without the slash
    finally:
        app.extensions["driftloop"]["shutdown"]()
