from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.ingestion.stream import replay
from driftloop.stages.drift_check import check_next_batch, recent_checks
from driftloop.stages.ingest import IngestError, ingest_landing, list_batches
from driftloop.stages.reference_profiles import reset_reference, resolve_profile
from driftloop.vocabulary import DriftStatus


@pytest.fixture
def gradual(settings, engine):
    replay(settings, "gradual", n_batches=9, start_batch=2, strength=0.9)
    ingest_landing(settings, engine)
    return settings


def test_batches_are_checked_oldest_first_and_red_wine_is_drift(gradual, engine):
    outcomes = []
    while (outcome := check_next_batch(gradual, engine)) is not None:
        outcomes.append(outcome)
    assert [o.batch_id for o in outcomes] == [b.id for b in list_batches(engine)]
    assert [o.status for o in outcomes[:2]] == ["no_drift", "no_drift"]
    assert outcomes[-1].status == "drift" and len(outcomes[-1].drifted_features) >= 4
    report = json.loads(Path(outcomes[-1].html_path).with_suffix(".json").read_text())
    assert report["status"] == "drift" and report["batch id"] == outcomes[-1].batch_id
    page = Path(outcomes[-1].html_path).read_text()
    assert "data:image/png;base64," in page and "total sulfur dioxide" in page
    assert [c.report_id for c in recent_checks(engine, gradual.model.name, 3)] == [
        o.report_id for o in outcomes[::-1][:3]
    ]


def test_rerunning_a_batch_changes_nothing(gradual, engine):
    first = check_next_batch(gradual, engine, "1")
    again = check_next_batch(gradual, engine, "1")
    assert first.new and not again.new
    assert (again.report_id, again.status) == (first.report_id, first.status)
    assert len(recent_checks(engine, gradual.model.name)) == 1


def test_a_failing_check_is_stored_and_does_not_block_the_next(gradual, engine):
    first = list_batches(engine)[0]
    Path(first.path).write_text("")  # the stored file went bad after ingestion
    failed = check_next_batch(gradual, engine)
    assert failed.batch_id == first.id and failed.status == DriftStatus.FAILED and failed.error
    assert check_next_batch(gradual, engine).batch_id == list_batches(engine)[1].id


def test_only_accepted_batches_are_checked(settings, engine):
    with pytest.raises(IngestError, match="no batch"):
        check_next_batch(settings, engine, "404")
    assert check_next_batch(settings, engine) is None


def test_reset_reference_makes_a_new_active_profile(gradual, engine):
    initial, _ = resolve_profile(gradual, engine)
    assert initial.kind == "initial" and initial.active
    batch_file = Path(list_batches(engine)[-1].path)  # mostly red wine
    record = reset_reference(gradual, engine, batch_file)
    active, profile = resolve_profile(gradual, engine)
    assert active.id == record.id != initial.id and profile.rows == record.rows
    # Against a red reference, the red batch no longer drifts.
    assert check_next_batch(gradual, engine, batch_file.name).status == "no_drift"


def test_a_reset_wins_over_the_production_profile_until_the_next_version(gradual, engine):
    from driftloop.ingestion.stream import split_reference
    from driftloop.stages.reference_profiles import profile_from_frame, store_profile

    reference, _ = split_reference(gradual)
    model = store_profile(
        gradual, engine, profile_from_frame(reference, gradual, "v1"), "model", "1"
    )
    assert resolve_profile(gradual, engine, "1")[0].id == model.id
    reset = reset_reference(gradual, engine)
    assert resolve_profile(gradual, engine, "1")[0].id == reset.id
    newer = store_profile(
        gradual, engine, profile_from_frame(reference, gradual, "v2"), "model", "2"
    )
    assert resolve_profile(gradual, engine, "2")[0].id == newer.id


def test_an_initial_profile_asked_for_more_draws_is_drawn_once(settings, engine, monkeypatch):
    """A served-traffic check that finds no profile builds the initial one at the draws its bar
    needs: one calibration, not one at drift.draws and a second that throws it away."""
    from driftloop.drift.profile import ReferenceProfile

    drawn: list[int] = []
    calibrate = ReferenceProfile.calibrate

    def counted(self, statistics, draws):
        did = calibrate(self, statistics, draws)
        if did:
            drawn.append(self.calibration_draws)
        return did

    monkeypatch.setattr(ReferenceProfile, "calibrate", counted)
    wanted = settings.drift.draws * 2
    record, profile = resolve_profile(settings, engine, None, wanted)
    assert record.kind == "initial" and profile.calibration_draws == wanted
    assert drawn == [wanted]
    assert ReferenceProfile.load(Path(record.path)).calibration_draws == wanted
