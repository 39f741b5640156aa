from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.data import read_table, write_table
from driftloop.ingestion.faults import FAULTS, write_faulty_batch
from driftloop.ingestion.stream import replay, split_reference
from driftloop.stages.ingest import (
    ACCEPTED,
    DUPLICATE,
    QUARANTINED,
    IngestError,
    ingest_file,
    ingest_landing,
    list_batches,
    reprocess,
)
from driftloop.storage import Batch, BatchValidation, session_scope

EXPECTED_REASON = {
    "missing-column": "missing column(s): ['alcohol']",
    "text-in-numeric": "that are not numbers (first 'n/a (sensor fault)'",
    "empty-file": "empty file",
    "duplicate-header": "duplicate column name(s) in the header: ['fixed acidity']",
    "wrong-separator": (
        "wrong separator: expected columns separated by ';'; the header looks separated by ','"
    ),
    "out-of-bounds": "value(s) below the minimum 0",
    "too-many-missing": "missing, above the limit of 20%",
}


@pytest.fixture
def good_batch(settings) -> pd.DataFrame:
    _, pool = split_reference(settings)
    return pool.head(50)


def test_every_batch_of_the_gradual_red_into_white_scenario_is_accepted(settings, engine):
    written = replay(settings, "gradual")
    outcomes = ingest_landing(settings, engine)
    assert len(outcomes) == len(written) > 10
    assert {o.status for o in outcomes} == {ACCEPTED}, [o.reasons for o in outcomes]
    assert not any(settings.storage.landing_dir.iterdir())
    batches = list_batches(engine, ACCEPTED)
    assert [b.name for b in batches] == [w.path.name for w in written]
    assert all(Path(b.path).parent == settings.storage.accepted_dir for b in batches)
    assert all(b.labelled and b.n_rows == settings.stream.batch_size for b in batches)


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_malformed_batch_is_quarantined_then_reprocessed_after_a_fix(
    settings, engine, good_batch, kind
):
    path = settings.storage.landing_dir / f"batch-0001-{kind}-20260101T000000Z.csv"
    write_faulty_batch(kind, good_batch, path, settings)

    outcome = ingest_file(path, settings, engine)
    assert outcome.status == QUARANTINED
    assert any(EXPECTED_REASON[kind] in reason for reason in outcome.reasons), outcome.reasons
    (stored,) = list_batches(engine, QUARANTINED)
    assert Path(stored.path).parent == settings.storage.quarantine_dir
    assert stored.reasons == outcome.reasons

    # Still broken: reprocessing keeps it quarantined and records the attempt.
    assert reprocess(str(stored.id), settings, engine).status == QUARANTINED

    write_table(good_batch, Path(stored.path), settings.data)  # a person fixes the file in place
    fixed = reprocess(stored.name, settings, engine)
    assert fixed.status == ACCEPTED and fixed.reasons == []
    (accepted,) = list_batches(engine, ACCEPTED)
    assert accepted.id == stored.id and accepted.attempts == 3
    assert Path(accepted.path).parent == settings.storage.accepted_dir
    assert not Path(stored.path).exists()
    with session_scope(engine) as session:
        history = session.scalars(
            sa.select(BatchValidation.status)
            .where(BatchValidation.batch_id == stored.id)
            .order_by(BatchValidation.id)
        ).all()
    assert history == [QUARANTINED, QUARANTINED, ACCEPTED]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("fixed acidity;volatile acidity\n", "empty file: a header but no data rows"),
        ("\n\n", "empty file: no header"),
        (None, "malformed rows"),
    ],
)
def test_other_unusable_files(settings, engine, good_batch, content, reason):
    path = settings.storage.landing_dir / "batch-0002-20260101T010000Z.csv"
    path.parent.mkdir(parents=True)
    if content is None:  # a ragged row: more fields than the header
        write_table(good_batch, path, settings.data)
        path.write_text(path.read_text() + "1;2;3;4;5;6;7;8;9;10;11;12;13\n")
    else:
        path.write_text(content)
    outcome = ingest_file(path, settings, engine)
    assert outcome.status == QUARANTINED
    assert any(reason in r for r in outcome.reasons), outcome.reasons


def test_rare_but_possible_values_are_drift_not_errors(settings, engine, good_batch):
    rare = good_batch.copy()
    rare["residual sugar"] = (
        rare["residual sugar"] * 20
    )  # far outside the reference, not impossible
    rare["pH"] = 13.9
    path = settings.storage.landing_dir / "batch-0003-20260101T020000Z.csv"
    write_table(rare, path, settings.data)
    assert ingest_file(path, settings, engine).status == ACCEPTED


def test_unlabelled_batch_and_extra_columns_are_accepted_with_notes(settings, engine, good_batch):
    frame = good_batch.drop(columns=["quality"]).assign(source="vineyard-7")
    path = settings.storage.landing_dir / "batch-0004-20260101T030000Z.csv"
    write_table(frame, path, settings.data)
    outcome = ingest_file(path, settings, engine)
    assert outcome.status == ACCEPTED
    assert any("extra column" in note and "source" in note for note in outcome.notes)
    (batch,) = list_batches(engine)
    assert batch.labelled is False


def test_the_same_file_twice_is_one_batch(settings, engine, good_batch):
    first = settings.storage.landing_dir / "batch-0005-20260101T040000Z.csv"
    write_table(good_batch, first, settings.data)
    copy = first.with_name("batch-0005-copy-20260101T040000Z.csv")
    shutil.copyfile(first, copy)
    outcomes = ingest_landing(settings, engine)
    assert sorted(o.status for o in outcomes) == [ACCEPTED, DUPLICATE]
    assert len(list_batches(engine)) == 1
    assert not copy.exists() and not first.exists()


def test_reprocess_refuses_what_it_cannot_do(settings, engine, good_batch):
    path = settings.storage.landing_dir / "batch-0006-20260101T050000Z.csv"
    write_table(good_batch, path, settings.data)
    accepted = ingest_file(path, settings, engine)
    with pytest.raises(IngestError, match="only quarantined batches"):
        reprocess(str(accepted.batch_id), settings, engine)
    with pytest.raises(IngestError, match="no batch"):
        reprocess("999", settings, engine)


def test_reprocess_with_a_fixed_file_from_elsewhere(settings, engine, good_batch, tmp_path):
    path = settings.storage.landing_dir / "batch-0007-20260101T060000Z.csv"
    write_faulty_batch("missing-column", good_batch, path, settings)
    batch_id = ingest_file(path, settings, engine).batch_id
    fixed = tmp_path / "fixed.csv"
    write_table(good_batch, fixed, settings.data)
    assert reprocess(str(batch_id), settings, engine, fixed_file=fixed).status == ACCEPTED
    with session_scope(engine) as session:
        batch = session.get(Batch, batch_id)
        assert read_table(Path(batch.path), settings.data).shape == good_batch.shape
