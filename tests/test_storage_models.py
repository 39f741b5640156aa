"""Two models in one database keep their rows apart (issue 30, item 3).

Each model's loop reads and claims only its own batches, drift checks, retrains, feedback and
approvals, on SQLite and PostgreSQL alike; a feedback's record id is unique per model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftloop.config import Settings
from driftloop.ingestion.stream import replay
from driftloop.schema import current_revision, downgrade, head_revision
from driftloop.settings_loader import load_settings
from driftloop.stages.claims import unchecked_batches
from driftloop.stages.drift_check import check_next_batch, latest_drift_check, recent_checks
from driftloop.stages.feedback import DuplicateFeedback, record_feedback
from driftloop.stages.ingest import ingest_landing, list_batches
from driftloop.stages.retrain_steps import Decision, record
from driftloop.vocabulary import RetrainDecision, Trigger

ROOT = Path(__file__).resolve().parents[1]
# a check that costs little: which model's rows a check reads is the question, not its verdict
CHEAP_DRIFT = {
    "statistics": ["jensen_shannon"],
    "calibration_draws": 200,
    "false_alarm_rate": 0.05,
    "multivariate": False,
}
FEATURES = ["alcohol"]


def _model(name: str, home: Path, database_url: str) -> Settings:
    """The project's model renamed ``name``, with a home of its own on the shared database."""
    settings = load_settings(
        ROOT / "driftloop.yaml",
        storage={"home": home / name},
        database={"url": database_url},
        drift=CHEAP_DRIFT,
    )
    # one feature: each checked column is a plot in the report, the slow part of a check
    data = settings.data.model_copy(
        update={"features": FEATURES, "bounds": {f: settings.data.bounds[f] for f in FEATURES}}
    )
    model = settings.model.model_copy(update={"name": name})
    return settings.model_copy(update={"model": model, "data": data})


@pytest.fixture
def red_and_white(settings, engine, tmp_path) -> tuple[Settings, Settings]:
    """Two models on the test's database; the same batch files land for both."""
    url = engine.url.render_as_string(hide_password=False)
    red, white = (_model(name, tmp_path, url) for name in ("red", "white"))
    replay(red, "gradual", n_batches=1, start_batch=2, strength=0.9)
    white.storage.landing_dir.mkdir(parents=True, exist_ok=True)
    for path in red.storage.landing_dir.iterdir():
        shutil.copy(path, white.storage.landing_dir / path.name)
    return red, white


def test_two_models_share_a_database_and_keep_their_rows_apart(engine, red_and_white):
    red, white = red_and_white
    ingest_landing(red, engine)
    ingest_landing(white, engine)
    # the same bytes are a batch of each model, not a duplicate of the other's
    red_batches = list_batches(engine, model="red")
    white_batches = list_batches(engine, model="white")
    assert len(red_batches) == len(white_batches) == 1
    assert [b.digest for b in red_batches] == [b.digest for b in white_batches]
    assert {b.id for b in red_batches}.isdisjoint(b.id for b in white_batches)
    assert unchecked_batches(engine, "white") == [b.id for b in white_batches]

    # red's checker checks red's batch only; white's stays waiting for white's checker
    assert check_next_batch(red, engine).batch_id == red_batches[0].id
    assert check_next_batch(red, engine) is None
    assert sorted(c.batch_id for c in recent_checks(engine, "red")) == [b.id for b in red_batches]
    assert recent_checks(engine, "white") == []
    assert unchecked_batches(engine, "red") == []
    assert unchecked_batches(engine, "white") == [b.id for b in white_batches]
    assert latest_drift_check(engine, "white") is None
    outcome = check_next_batch(white, engine)
    assert outcome is not None and outcome.batch_id == white_batches[0].id
    assert [c.report_id for c in recent_checks(engine, "white")] == [outcome.report_id]
    assert len(recent_checks(engine, "red")) == 1

    decision = Decision(RetrainDecision.SKIPPED, "cooling down")
    record(engine, "white", decision, Trigger.MANUAL, None)
    from driftloop.ui.overview import retrain_runs

    assert retrain_runs(engine, "red") == []
    assert [r["decision"] for r in retrain_runs(engine, "white")] == ["skipped"]
    # revision 0015 could not keep them apart: going back is refused, and changes nothing
    with pytest.raises(RuntimeError, match="rows of models red, white"):
        downgrade(engine, "0015")
    assert current_revision(engine) == head_revision()


def test_a_record_id_is_unique_per_model_not_across_models(engine):
    from driftloop.ab.rows import unmatched_feedback

    record_feedback(engine, "red", "rec-1", 5)
    record_feedback(engine, "white", "rec-1", 6)  # another model's record of the same id
    with pytest.raises(DuplicateFeedback, match="rec-1"):
        record_feedback(engine, "red", "rec-1", 7)
    assert unmatched_feedback(engine, "red") == unmatched_feedback(engine, "white") == 1
    assert unmatched_feedback(engine, "blue") == 0
