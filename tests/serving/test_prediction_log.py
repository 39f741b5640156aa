from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from driftloop.ab.rows import unmatched_feedback
from driftloop.schema import upgrade
from driftloop.stack.processes import wait_until
from driftloop.stages.feedback import DuplicateFeedback, record_feedback
from driftloop.stages.prediction_writer import purge_older_than
from driftloop.storage import Prediction, make_engine, session_scope
from serving.prediction_log import PredictionLog


def _row(i: int, **extra) -> dict:
    return {
        "request_id": f"req-{i}",
        "record_id": f"rec-{i}",
        "model_name": "wine",
        "variant": "production",
        "model_version": "1",
        "shadow": False,
        "status": 200,
        "inputs": {"x": i},
        "output": {"y": 1},
        "latency_ms": 1.5,
        **extra,
    }


def _count(engine: sa.Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(sa.select(sa.func.count(Prediction.id)))


def test_concurrent_writers_lose_nothing_even_through_a_small_buffer(engine):
    log = PredictionLog(engine, capacity=50, batch_size=64, flush_seconds=0.05)

    def client(n: int) -> None:
        for i in range(500):
            log.write([_row(n * 1000 + i)])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert _count(engine) == 4000 == log.written
    with pytest.raises(RuntimeError, match="closed"):
        log.write([_row(1)])


def test_a_row_the_database_refuses_holds_up_nothing(engine):
    """PostgreSQL refuses NUL characters and over-long ids; such a row must not stall the log."""
    nul = _row(2, inputs={"x\u0000": 1}, error="unknown field 'x\u0000'", status=422)
    too_long = _row(3, record_id="r" * 65)
    log = PredictionLog(engine, flush_seconds=0.05)
    log.write([_row(1), nul, too_long, _row(4)])
    log.write([_row(5)])
    log.close()
    with session_scope(engine) as session:
        stored = {p.request_id: p for p in session.scalars(sa.select(Prediction))}
    assert {"req-1", "req-2", "req-4", "req-5"} <= set(stored)
    if engine.dialect.name == "postgresql":
        assert stored["req-2"].inputs == {"x": 1} and "\u0000" not in stored["req-2"].error
        assert "req-3" not in stored and log.written == 4
    else:  # SQLite takes both as they are
        assert "req-3" in stored and log.written == 5


def test_rows_survive_a_database_that_fails_for_a_while(tmp_path, capfd):
    engine = make_engine(f"sqlite:///{tmp_path / 'late.db'}")  # no tables yet: inserts fail
    log = PredictionLog(engine, flush_seconds=0.05)
    log.write([_row(i) for i in range(10)])
    said: list[str] = []  # the writer process's stderr, as captured so far

    def failed_once() -> bool | None:
        said.append(capfd.readouterr().err)
        return "prediction log insert failed, retrying" in "".join(said) or None

    # the database comes back only once an insert has failed: otherwise the test could pass
    # without the writer ever meeting a failing database
    wait_until(failed_once, 60, "the writer to report a failed insert", interval=0.05)
    assert log.written == 0
    upgrade(engine)  # the database comes back
    log.close()
    assert _count(engine) == 10


def test_feedback_once_per_record_and_unmatched_until_its_prediction_arrives(engine):
    record_feedback(engine, "wine", "rec-7", 6)  # before its prediction row: kept
    with pytest.raises(DuplicateFeedback, match="rec-7"):
        record_feedback(engine, "wine", "rec-7", 5)
    assert unmatched_feedback(engine, "wine") == 1
    log = PredictionLog(engine)
    log.write([_row(7)])
    log.close()
    assert unmatched_feedback(engine, "wine") == 0


def test_retention_purges_only_old_rows(engine):
    log = PredictionLog(engine)
    log.write([_row(1, created_at=datetime.now(UTC) - timedelta(days=40)), _row(2)])
    log.close()
    assert purge_older_than(engine, days=30) == 1
    assert _count(engine) == 1


def test_the_writer_applies_the_retention_period_itself(engine):
    old = PredictionLog(engine)
    old.write([_row(1, created_at=datetime.now(UTC) - timedelta(days=40))])
    old.close()
    log = PredictionLog(engine, retention_days=30, flush_seconds=0.05)
    log.write([_row(2)])
    log.close()
    assert _count(engine) == 1
