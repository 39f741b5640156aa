"""The prediction log when its database will not take writes (issue 28: disk full, read-only):
rows go to spill files after the writer's patience, each counted, and ``driftloop db
replay-spill`` inserts them later; when the disk will not take them either, they are counted
as lost, never silently dropped."""

from __future__ import annotations

import sqlalchemy as sa

from driftloop.schema import upgrade
from driftloop.stages.spill import replay, spill_rows
from driftloop.storage import make_engine
from serving.prediction_log import PredictionLog


def _rows(start: int, count: int) -> list[dict]:
    return [
        {
            "request_id": f"req-{i}",
            "record_id": f"rec-{i}",
            "model_name": "wine",
            "variant": "production",
            "model_version": "1",
            "inputs": {"x": i},
            "output": {"y": 1},
            "latency_ms": 1.0,
        }
        for i in range(start, start + count)
    ]


def _count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("select count(*) from predictions"))


def test_rows_a_refusing_database_will_not_take_are_spilled_and_replayed(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")  # no tables: every insert fails
    folder = tmp_path / "spill"
    log = PredictionLog(engine, flush_seconds=0.05, spill_folder=folder, spill_after_seconds=0.3)
    for n in range(20):
        log.write(_rows(n * 10, 10))
    log.close()
    assert log.counts == {"inserted": 0, "spilled": 200, "refused": 0, "lost": 0}
    upgrade(engine)
    assert replay(engine, folder) == (1, 200)
    assert _count(engine) == 200 and not list(folder.iterdir())
    assert replay(engine, folder) == (0, 0)  # nothing twice


def test_rows_neither_database_nor_disk_takes_are_counted_as_lost(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    (tmp_path / "a-file").write_text("")
    log = PredictionLog(
        engine,
        flush_seconds=0.05,
        spill_folder=tmp_path / "a-file" / "spill",
        spill_after_seconds=0.3,
    )
    log.write(_rows(0, 5))
    log.close()
    assert log.counts["lost"] == 5 and log.counts["spilled"] == 0


def test_a_file_spilled_across_an_upgrade_replays_rows_with_and_without_client_keys(tmp_path):
    """A server before migration 0015 spilled rows without ``client_key``; one after, into the
    same file, with it: every row is inserted, the older ones with no key."""
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade(engine)
    folder = tmp_path / "spill"
    older, newer = _rows(0, 1), _rows(1, 1)
    newer[0]["client_key"] = "ab" * 16
    spill_rows(folder, older + newer)
    assert replay(engine, folder) == (1, 2)
    with engine.connect() as connection:
        keys = connection.execute(
            sa.text("select request_id, client_key from predictions order by request_id")
        ).all()
    assert [tuple(k) for k in keys] == [("req-0", None), ("req-1", "ab" * 16)]
