"""The drift commands as a person runs them: ``drift check [--all]``, ``drift reports`` and
``drift reset-reference`` in real processes, checked against the rows they leave in the
database. The batches are replayed and ingested in the test (the CLI's own replay and ingest
are tested in test_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.ingestion.stream import reference_path, replay
from driftloop.schema import upgrade
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing, list_batches
from driftloop.storage import Batch, DriftCheck, ReferenceProfileRecord, make_engine, session_scope
from tests.support.cli import Cli, Shown, clean_env

# One checked batch as the CLI prints it, and the report line after it.
CHECKED = re.compile(
    r"(?P<name>\S+): (?P<status>drift|no_drift) (?P<share>\d+)% of features"
    r"(?P<again> \(checked before\))?; drifted: (?P<drifted>.+?)(?P<target>; target drift)?\n"
    r"    report: (?P<report>\S+)\n"
)
NONE_LEFT = "no unchecked accepted batches\n"
FAILED = re.compile(r"(?P<name>\S+): check failed: (?P<error>.+)\n")


@pytest.fixture
def gradual(settings):
    """Five batches of a gradual shift to red wine, ingested: two white, then ever redder."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    replay(settings, "gradual", n_batches=5, start_batch=2, strength=0.9)
    ingest_landing(settings, engine)
    yield settings, engine
    engine.dispose()


@pytest.fixture
def run(settings, tmp_path: Path):
    return Cli(clean_env(settings.storage.home), cwd=tmp_path, shown=Shown.OUTPUT_OR_ERROR)


def _checks(engine) -> list[tuple[DriftCheck, Batch]]:
    """Every stored check with its batch, oldest first."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(DriftCheck, Batch)
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .order_by(DriftCheck.id)
        ).all()
        session.expunge_all()
        return [(check, batch) for check, batch in rows]


def _parse(out: str) -> list[dict]:
    """The printed checks, in order; the whole output must be made of them."""
    found = list(CHECKED.finditer(out))
    assert "".join(m[0] for m in found) == out, out
    return [m.groupdict() for m in found]


def _assert_printed(printed: dict, check: DriftCheck, batch: Batch, again: bool) -> None:
    """One printed check says what its stored row says."""
    assert printed["name"] == batch.name
    assert printed["status"] == check.status
    assert int(printed["share"]) == round(100 * check.drift_share)
    drifted = printed["drifted"].split(", ") if printed["drifted"] != "none" else []
    assert drifted == check.drifted_features
    assert bool(printed["target"]) == check.target_drift
    assert bool(printed["again"]) == again
    assert printed["report"] == check.html_path and Path(check.html_path).is_file()


def test_drift_check_takes_the_oldest_batch_then_all_the_rest(gradual, run):
    _, engine = gradual
    batches = list_batches(engine)
    assert len(batches) == 5

    # without arguments: only the oldest unchecked batch
    (printed,) = _parse(run("drift", "check"))
    ((check, batch),) = _checks(engine)
    assert batch.id == batches[0].id and check.status == "no_drift"
    assert check.drifted_features == [] and check.model_version is None  # no Production yet
    _assert_printed(printed, check, batch, again=False)

    # --all: the other four, oldest first, one row each, until none is left
    out = run("drift", "check", "--all")
    assert out.endswith(NONE_LEFT)
    printed = _parse(out.removesuffix(NONE_LEFT))
    stored = _checks(engine)
    assert [batch.id for _, batch in stored] == [b.id for b in batches]
    assert len(printed) == 4
    for line, (check, batch) in zip(printed, stored[1:], strict=True):
        _assert_printed(line, check, batch, again=False)
    assert [check.status for check, _ in stored[:2]] == ["no_drift", "no_drift"]
    assert stored[-1][0].status == "drift" and len(stored[-1][0].drifted_features) >= 4

    # a named batch checked before is shown again, not checked again
    (again,) = _parse(run("drift", "check", batches[-1].name))
    _assert_printed(again, *stored[-1], again=True)
    assert len(_checks(engine)) == 5

    assert run("drift", "check", "404", expect=1) == "error: no batch with id or name '404'"
    assert len(_checks(engine)) == 5


def test_drift_reports_lists_the_newest_checks_first_with_failures(gradual, run):
    settings, engine = gradual
    assert run("drift", "reports") == "no drift checks yet\n"

    batches = list_batches(engine)
    Path(batches[0].path).write_text("")  # its stored file went bad after ingestion
    while check_next_batch(settings, engine) is not None:
        pass
    stored = _checks(engine)
    assert stored[0][0].status == "failed" and stored[0][0].error

    newest = run("drift", "reports", "--limit", "3")
    printed = _parse(newest)
    assert len(printed) == 3
    for line, (check, batch) in zip(printed, stored[::-1][:3], strict=True):
        _assert_printed(line, check, batch, again=True)

    everything = run("drift", "reports")
    failed = FAILED.search(everything)
    assert failed and everything.endswith(failed[0])  # the oldest, listed last
    assert failed["name"] == batches[0].name and failed["error"] == stored[0][0].error
    printed = _parse(everything.removesuffix(failed[0]))
    assert [line["name"] for line in printed] == [batch.name for _, batch in stored[:0:-1]]


def _profiles(engine) -> list[ReferenceProfileRecord]:
    with session_scope(engine) as session:
        rows = list(
            session.scalars(sa.select(ReferenceProfileRecord).order_by(ReferenceProfileRecord.id))
        )
        session.expunge_all()
        return rows


def test_drift_reset_reference_asks_then_makes_the_new_profile_the_one_checked_against(
    gradual, run, tmp_path
):
    settings, engine = gradual
    red = list_batches(engine)[-1]  # the reddest batch

    assert run("drift", "reset-reference", "--file", red.path, answer="n\n", expect=1) == "aborted"
    assert _profiles(engine) == []
    missing = tmp_path / "missing.csv"
    assert run("drift", "reset-reference", "--yes", "--file", str(missing), expect=1) == (
        f"error: reference file {missing} does not exist"
    )
    assert _profiles(engine) == []

    out = run("drift", "reset-reference", "--yes", "--file", red.path)
    (record,) = _profiles(engine)
    rows = len(pd.read_csv(red.path, sep=settings.data.separator))
    assert (record.kind, record.active, record.rows, record.source) == (
        "reset",
        True,
        rows,
        red.path,
    )
    assert out == f"reference profile {record.id}: {rows} rows from {red.path} ({record.path})\n"
    assert Path(record.path).is_file()

    # checked against the red reference, the red batch is no drift
    assert check_next_batch(settings, engine, red.name).status == "no_drift"
    ((check, batch),) = _checks(engine)
    assert batch.id == red.id and check.profile_id == record.id

    # without --file: the initial reference split, which becomes the only active profile
    out = run("drift", "reset-reference", "--yes")
    first, initial = _profiles(engine)
    assert first.id == record.id and not first.active
    assert (initial.kind, initial.active, initial.rows) == ("reset", True, 1469)
    assert initial.source == str(reference_path(settings))
    assert out == (
        f"reference profile {initial.id}: 1469 rows from {reference_path(settings)} "
        f"({initial.path})\n"
    )
