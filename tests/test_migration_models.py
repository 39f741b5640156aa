"""Migration 0016 moves a single-model database to its model with nothing lost.

The database is a demo run's, made at revision 0015 before the migration existed
(tests/data/README.md): every row of every table must come through, value for value, with the
seven tables that lacked it now naming the model; and back down again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.schema import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from driftloop.stages.ingest import list_batches
from driftloop.storage import make_engine

FIXTURE = Path(__file__).parent / "data" / "demo-0015.db"
MODEL = "wine-quality"  # driftloop.demo.yaml's model.name, the demo's registered model
GAINED = (
    "batches",
    "batch_validations",
    "reference_profiles",
    "drift_checks",
    "retrain_runs",
    "feedback",
    "approvals",
)


def _rows(engine: sa.Engine, tables: Iterable[str] | None = None) -> dict[str, list[tuple]]:
    """Every row of every driftloop table (of ``tables`` only: those of an older revision,
    not the tables later revisions add), by primary key, without the columns 0016 adds."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    rows = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name == VERSION_TABLE or (tables is not None and table.name not in tables):
                continue
            columns = [c for c in table.c if not (table.name in GAINED and c.name == "model_name")]
            query = sa.select(*columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(query)]
    return rows


def _owners(engine: sa.Engine) -> dict[str, list[str | None]]:
    with engine.connect() as connection:
        return {
            table: connection.scalars(
                sa.select(sa.column("model_name")).select_from(sa.table(table))
            ).all()
            for table in GAINED
        }


def _at_0015(database_url: str) -> sa.Engine:
    """The demo's database at ``database_url``: the file itself on SQLite; on PostgreSQL its
    rows copied, table by table, into a database migrated to 0015."""
    if database_url.startswith("sqlite"):
        shutil.copy(FIXTURE, database_url.removeprefix("sqlite:///"))
        return make_engine(database_url)
    engine = make_engine(database_url)
    upgrade(engine, "0015")
    source = make_engine(f"sqlite:///{FIXTURE}")
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with source.connect() as reading, engine.begin() as writing:
        for table in metadata.sorted_tables:
            if table.name == VERSION_TABLE:
                continue
            rows = [dict(r._mapping) for r in reading.execute(sa.select(table))]
            if rows:
                writing.execute(table.insert(), rows)
    source.dispose()
    return engine


def test_0016_moves_a_demo_database_to_its_model_with_nothing_lost(database_url):
    engine = _at_0015(database_url)
    assert current_revision(engine) == "0015"
    before = _rows(engine)
    # a demo run's rows: the loop's every table that 0016 changes holds some
    for table in ("batches", "batch_validations", "drift_checks", "retrain_runs", "feedback"):
        assert before[table], table
    assert len(before["predictions"]) == len(before["feedback"]) > 100

    # rows filed under another model than theirs are refused, and nothing changes
    with pytest.raises(RuntimeError, match=f"belong to model {MODEL}, not 'fraud'"):
        upgrade(engine, model_name="fraud")
    assert current_revision(engine) == "0015" and _rows(engine) == before

    # without a name, the one name the prediction log and the other named tables carry
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _rows(engine, before) == before
    owners = _owners(engine)
    assert {table: len(names) for table, names in owners.items()} == {
        table: len(before[table]) for table in GAINED
    }
    assert {name for names in owners.values() for name in names} == {MODEL}
    assert len(list_batches(engine, model=MODEL)) == len(before["batches"])

    downgrade(engine, "0015")
    assert _rows(engine) == before
    upgrade(engine, model_name=MODEL)  # as `driftloop db upgrade` does, from model.name
    assert _rows(engine, before) == before and _owners(engine) == owners
    engine.dispose()
