"""Parallel drift checks check each batch exactly once; waiting drift events make one retrain.

The races run on real databases (SQLite and PostgreSQL): several threads, each with its own
engine as separate worker processes would have, go for the same batches at once.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from driftloop.ingestion.stream import replay
from driftloop.stages.claims import (
    CLAIM_TIMEOUT,
    BatchBusy,
    claim_batch,
    merge_drift_checks,
    unchecked_batches,
)
from driftloop.stages.drift_check import check_next_batch, drift_batch_time, recent_checks
from driftloop.stages.ingest import ingest_landing, list_batches
from driftloop.stages.training_data import assemble_waiting
from driftloop.storage import Batch, DriftCheck, RetrainRun, make_engine, session_scope, utcnow
from driftloop.vocabulary import DriftStatus, RetrainDecision, Trigger


@pytest.fixture
def batches(settings, engine) -> list[int]:
    replay(settings, "gradual", n_batches=4, start_batch=2, strength=0.9)
    ingest_landing(settings, engine)
    return [batch.id for batch in list_batches(engine)]


def _race(workers: int, target) -> list:
    """Run ``target(i)`` in ``workers`` threads released together; their results or errors."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # the race's loser: kept to be asserted on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_one_of_racing_claims_wins_and_the_same_checker_may_claim_again(settings, engine, batches):
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(6)]
    try:
        won = _race(6, lambda i: claim_batch(engines[i], batches[0], f"checker-{i}"))
    finally:
        for each in engines:
            each.dispose()
    assert sorted(won) == [False] * 5 + [True], won
    winner = f"checker-{won.index(True)}"
    assert claim_batch(engine, batches[0], winner)  # an Airflow retry of the same task
    assert not claim_batch(engine, batches[0], "someone-else")
    assert batches[0] not in unchecked_batches(
        engine, settings.model.name
    )  # claimed: not offered again
    assert unchecked_batches(engine, settings.model.name) == batches[1:]


def test_an_abandoned_claim_is_taken_over(settings, engine, batches):
    assert claim_batch(engine, batches[0], "died")
    with session_scope(engine) as session:
        session.get(Batch, batches[0]).drift_claimed_at = utcnow() - CLAIM_TIMEOUT - timedelta(1)
    assert batches[0] in unchecked_batches(engine, settings.model.name)
    assert claim_batch(engine, batches[0], "survivor")


def test_parallel_checkers_check_each_batch_exactly_once(settings, engine, batches):
    """Four checkers each walk all batches at once, as mapped tasks of two overlapping runs
    would: every batch gets one check, made by one checker; the others hear it is busy or
    get the stored result (``new=False``)."""
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(4)]

    def walk(i: int) -> list:
        seen = []
        for batch_id in batches:
            try:
                outcome = check_next_batch(settings, engines[i], batch_id, claimant=f"run-{i}")
                seen.append((batch_id, outcome.new))
            except BatchBusy as exc:
                seen.append((batch_id, str(exc)))
        return seen

    try:
        results = _race(4, walk)
    finally:
        for each in engines:
            each.dispose()
    assert not [r for r in results if isinstance(r, Exception)], results
    new = [batch for seen in results for batch, result in seen if result is True]
    assert sorted(new) == batches  # each batch checked, and by exactly one checker
    busy = [result for seen in results for _, result in seen if isinstance(result, str)]
    assert all("is being checked by run-" in message for message in busy), busy
    assert sorted(c.batch_id for c in recent_checks(engine, settings.model.name, 100)) == batches
    assert unchecked_batches(engine, settings.model.name) == []


def test_a_batch_held_by_another_checker_is_busy_with_a_sentence(settings, engine, batches):
    """Deterministic, where the race above may or may not produce a busy checker: a batch that
    another run holds is refused with a sentence naming the holder, and nothing is checked."""
    assert claim_batch(engine, batches[0], "run-holder")
    with pytest.raises(BatchBusy, match="is being checked by run-holder"):
        check_next_batch(settings, engine, batches[0], claimant="run-other")
    assert recent_checks(engine, settings.model.name, 100) == []
    assert check_next_batch(settings, engine, batches[0], claimant="run-holder").new  # its retry


def test_a_failing_check_gives_its_claim_back(settings, engine, batches, monkeypatch):
    import driftloop.stages.drift_check as monitor

    def broken(*args, **kwargs):
        raise RuntimeError("the worker lost its disk")

    monkeypatch.setattr(monitor, "resolve_profile", broken)
    with pytest.raises(RuntimeError, match="lost its disk"):
        check_next_batch(settings, engine, batches[0], claimant="unlucky")
    assert batches[0] in unchecked_batches(
        engine, settings.model.name
    )  # another checker may take it at once


def _drift_check(engine: sa.Engine, model: str, batch_id: int) -> int:
    with session_scope(engine) as session:
        check = DriftCheck(
            model_name=model, batch_id=batch_id, status=DriftStatus.DRIFT, drifted_features=["x"]
        )
        session.add(check)
        session.flush()
        return check.id


def test_waiting_drift_events_make_one_retrain_on_the_newest_check(settings, engine, batches):
    """Two drift events wait (the retrain DAG sees both in its triggering events): one
    retrain attempt takes the newest check, by its batch's time, and records the other as
    merged into it, on the check and with the attempt's decision."""
    name = settings.model.name
    newer = _drift_check(engine, name, batches[2])
    older = _drift_check(engine, name, batches[1])  # checked later, but its batch is older
    # no Production version here, so the attempt is a recorded skip: the merge stands anyway
    outcome = assemble_waiting(settings, engine, [newer, older], Trigger.DRIFT)
    assert outcome.decision.outcome == RetrainDecision.SKIPPED
    with session_scope(engine) as session:
        (run,) = session.scalars(sa.select(RetrainRun)).all()
        assert run.drift_check_id == newer
        assert run.details == {"merged_drift_checks": [older]}
        assert session.get(DriftCheck, older).merged_into == newer
        assert session.get(DriftCheck, newer).merged_into is None
        # the rows "since the drift" start at the oldest merged batch: the drift began there
        assert drift_batch_time(session, newer) == session.get(Batch, batches[1]).batch_time
    shown = {c.report_id: c.merged_into for c in recent_checks(engine, settings.model.name)}
    assert shown == {newer: None, older: newer}
    # a retried task merges alike; one event alone merges nothing
    assert merge_drift_checks(engine, [older, newer]).merged == (older,)
    assert merge_drift_checks(engine, [newer]).merged == ()
    assert merge_drift_checks(engine, [None]).drift_check_id is None
