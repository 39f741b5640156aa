"""``driftloop simulate`` against a running server: the CLI in its own process sends rows of
the newest accepted batches (and their labels) over HTTP to the real Flask app, served in this
test process by werkzeug's threaded server, with one version in Production and another in
Staging."""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from driftloop.data import read_table
from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.stack.processes import free_port
from driftloop.stages.ingest import ingest_landing, list_batches
from driftloop.storage import Feedback, Prediction, make_engine, session_scope
from serving.app import create_app
from tests.support.cli import Cli, Shown, clean_env
from tests.support.registry_home import production_and_staging

ANSWERED = re.compile(
    r"(?P<variant>production|staging) +version +(?P<version>\d+): +(?P<count>\d+) requests "
    r"\((?P<share>[\d.]+)%\), (?P<correct>[\d.]+)% correct"
)


@pytest.fixture
def served(settings):
    """Version 1 in Production and 2 in Staging (a small scikit-learn model: what is served
    does not matter here, only that it answers), and a way to run the CLI on that home."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    production_and_staging(settings)
    run = Cli(
        clean_env(settings.storage.home),
        cwd=settings.storage.home.parent,
        shown=Shown.OUTPUT_OR_ERROR,
    )

    yield settings, engine, run
    engine.dispose()


def _rows(settings, batches) -> dict[tuple, set[str]]:
    """Each row's feature values (in the configured order) and its labels (the data set
    holds some rows more than once)."""
    rows: dict[tuple, set[str]] = {}
    for batch in batches:
        frame = read_table(Path(batch.path), settings.data)
        for record in frame.to_dict("records"):
            key = tuple(record[column] for column in settings.feature_columns)
            rows.setdefault(key, set()).add(str(record[settings.data.target]))
    return rows


@pytest.mark.timeout(600)
def test_simulate_sends_the_newest_batches_rows_with_their_labels(served):
    settings, engine, run = served
    # nothing to draw rows from yet: one sentence, exit 1, before any server is needed
    assert run("simulate", "--url", "http://127.0.0.1:9", expect=1) == (
        "error: no accepted batches to draw rows from: replay and ingest a stream first"
    )

    replay(settings, "none", n_batches=4)
    ingest_landing(settings, engine)
    batches = list_batches(engine)
    assert len(batches) == 4
    newest, older = _rows(settings, batches[-2:]), _rows(settings, batches[:-2])
    # the data set repeats some rows; most of the older batches' are not in the newest two
    assert len(older.keys() - newest.keys()) > 400

    app = create_app(settings, background=False)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        args = ("--requests", "60", "--feedback", "--batches", "2", "--seed", "3")
        out = run("simulate", "--url", url, *args)
    finally:
        server.shutdown()
        app.extensions["driftloop"]["shutdown"]()  # the prediction log is written out

    *answered_lines, stored_line = out.splitlines()
    assert stored_line == "feedback stored: 60"  # every answer's label stored, no failure line
    printed = [ANSWERED.fullmatch(line) for line in answered_lines]
    assert all(printed), out
    with session_scope(engine) as session:
        predictions = list(session.scalars(sa.select(Prediction)))
        feedback = {f.record_id: f.value for f in session.scalars(sa.select(Feedback))}
        logged = [
            (p.variant, p.model_version, p.record_id, p.status, p.shadow, p.assignment, p.inputs)
            for p in predictions
            if p.output is not None
        ]
        outputs = {p.record_id: p.output["prediction"] for p in predictions}
    assert len(predictions) == len(logged) == 60
    assert {(status, shadow, how) for _, _, _, status, shadow, how, _ in logged} == {
        (200, False, "sticky")  # one client id per simulated client
    }
    # the split the CLI printed is the one the server logged
    counts = Counter((variant, version) for variant, version, *_ in logged)
    assert {(m["variant"], m["version"]): int(m["count"]) for m in printed} == counts
    assert sum(counts.values()) == 60 and set(counts) <= {("production", "1"), ("staging", "2")}
    for m in printed:
        assert float(m["share"]) == pytest.approx(100 * int(m["count"]) / 60, abs=0.05)

    # rows of the two newest batches only, each with its own label as feedback
    assert set(feedback) == {record_id for _, _, record_id, *_ in logged}
    for *_, record_id, _, _, _, inputs in logged:
        key = tuple(inputs[column] for column in settings.feature_columns)
        assert key in newest, inputs
        assert str(feedback[record_id]) in newest[key]
    # "correct" is the share of answers equal to the label sent back
    for m in printed:
        ids = [r for v, n, r, *_ in logged if (v, n) == (m["variant"], m["version"])]
        right = sum(str(outputs[r]) == str(feedback[r]) for r in ids)
        assert float(m["correct"]) == pytest.approx(100 * right / len(ids), abs=0.05)
