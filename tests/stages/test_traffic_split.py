"""Traffic split versions: every save is a new, kept version, and the A/B analysis keeps only
rows routed under the split in force when they were logged, so a replica that has not polled a
change yet never puts a sticky client in both arms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.ab.rows import load_rows, routed_in_force
from driftloop.ab.traffic import TrafficSplit, load_split
from driftloop.stages.traffic_split import save_split
from driftloop.storage import (
    ABTest,
    Feedback,
    Prediction,
    TrafficSplitVersion,
    session_scope,
)

NAME = "wine-quality"


def test_every_save_is_the_next_version_and_is_kept(engine):
    assert load_split(engine, NAME, 0.1).version == 0  # the configured default, never saved
    assert save_split(engine, NAME, TrafficSplit(0.1), who="a") == 1
    assert save_split(engine, NAME, TrafficSplit(0.3, shadow=True), who="b") == 2
    current = load_split(engine, NAME, 0.0)
    assert (current.staging_weight, current.shadow, current.version) == (0.3, True, 2)
    assert save_split(engine, "other-model", TrafficSplit(0.5), who="c") == 1
    with session_scope(engine) as session:
        kept = session.execute(
            sa.select(
                TrafficSplitVersion.version,
                TrafficSplitVersion.staging_weight,
                TrafficSplitVersion.shadow,
                TrafficSplitVersion.saved_by,
            )
            .where(TrafficSplitVersion.model_name == NAME)
            .order_by(TrafficSplitVersion.version)
        ).all()
    assert [tuple(k) for k in kept] == [(1, 0.1, False, "a"), (2, 0.3, True, "b")]


def _saved_at(engine: sa.Engine, version: int) -> datetime:
    with session_scope(engine) as session:
        moment = session.scalar(
            sa.select(TrafficSplitVersion.saved_at).where(
                TrafficSplitVersion.model_name == NAME, TrafficSplitVersion.version == version
            )
        )
    return pd.Timestamp(moment).tz_localize(UTC) if moment.tzinfo is None else moment


def test_rows_routed_by_a_superseded_split_are_left_out(engine):
    save_split(engine, NAME, TrafficSplit(0.1), who="t")
    save_split(engine, NAME, TrafficSplit(0.5), who="t")
    first, second = _saved_at(engine, 1), _saved_at(engine, 2)
    second_s = timedelta(seconds=1)
    rows = pd.DataFrame(
        {
            "split_version": [0, 1, 1, 2, None, 2],
            "created_at": [
                first - second_s,  # before any save: the default was in force
                first + (second - first) / 2,  # routed by version 1 while it was in force
                second + second_s,  # a lagging replica, still on version 1
                second + second_s,  # a replica that has polled version 2
                second + second_s,  # logged before split versions were recorded
                first + (second - first) / 2,  # version 2 before it existed: impossible, refused
            ],
        }
    )
    kept = routed_in_force(engine, NAME, rows)
    assert kept.tolist() == [True, True, False, True, True, False]
    assert routed_in_force(engine, NAME, rows.iloc[:0]).empty


@pytest.mark.parametrize("lagging_rows", [0, 40])
def test_the_analysis_counts_each_replica_row_once_and_drops_the_disagreement_window(
    engine, lagging_rows
):
    """Two replicas log into one table; replica B is slow to see the new weight for a while.
    Every row of A and every in-force row of B is counted exactly once."""
    save_split(engine, NAME, TrafficSplit(0.2), who="t")
    save_split(engine, NAME, TrafficSplit(0.5), who="t")
    start, after = _saved_at(engine, 1), _saved_at(engine, 2)
    step = (after - start) / 202  # the first 100 rows of each replica fall between the saves
    test = ABTest(
        model_name=NAME,
        production_version="1",
        staging_version="2",
        status="running",
        started_at=start,
    )
    rows, feedback = [], []

    def log(replica: str, i: int, variant: str, split_version: int, at: datetime) -> None:
        record = f"{replica}-{i}"
        rows.append(
            {
                "request_id": record,
                "record_id": record,
                "model_name": NAME,
                "variant": variant,
                "model_version": "1" if variant == "production" else "2",
                "shadow": False,
                "status": 200,
                "assignment": "sticky",
                "split_version": split_version,
                "output": {"prediction": 6},
                "created_at": at,
            }
        )
        feedback.append({"model_name": NAME, "record_id": record, "value": 6, "created_at": at})

    for i in range(100):  # both replicas under version 1
        for replica in ("a", "b"):
            log(replica, i, "production" if i % 5 else "staging", 1, start + step * (i + 1))
    with engine.begin() as connection:
        connection.execute(sa.insert(Prediction), [_full(r) for r in rows])
        connection.execute(sa.insert(Feedback), feedback)
    rows.clear(), feedback.clear()
    for i in range(100, 200):  # A follows at once; B keeps version 1 for lagging_rows rows
        log("a", i, "production" if i % 2 else "staging", 2, after + timedelta(**ms(i - 99)))
        lagging = i < 100 + lagging_rows
        log(
            "b",
            i,
            "production" if i % (5 if lagging else 2) else "staging",
            1 if lagging else 2,
            after + timedelta(**ms(i - 99)),
        )
    with engine.begin() as connection:
        connection.execute(sa.insert(Prediction), [_full(r) for r in rows])
        connection.execute(sa.insert(Feedback), feedback)

    counted = load_rows(engine, test)
    assert counted["request_id"].is_unique  # no row counted twice
    expected = 400 - lagging_rows
    assert len(counted) == expected
    assert set(counted["request_id"]) == {f"a-{i}" for i in range(200)} | {
        f"b-{i}" for i in range(200) if not 100 <= i < 100 + lagging_rows
    }
    assert counted["has_truth"].all()


def ms(i: int) -> dict[str, int]:
    return {"milliseconds": i}


def _full(row: dict) -> dict:
    """Every column named, as executemany needs."""
    return {"inputs": None, "missing": None, "error": None, "latency_ms": 1.0, **row}
