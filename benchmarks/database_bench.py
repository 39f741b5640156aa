"""Database benchmark: how fast the prediction log takes rows, and how long the A/B analysis
takes to read them, on PostgreSQL and on SQLite.

Why: issue 19 (item 4) asks how the database scales. Every answered request is one row in
``predictions``, written by each server process's log writer in batches, and every A/B look
reads the test's rows joined with feedback. So the database's ceiling, in requests per second
across all replicas, is its insert rate with that many writers, and the analysis's cost grows
with the rows of a test. ``docs/scaling.md`` turns these figures into advice.

What, on a fresh PostgreSQL database (``--postgres-admin-url``, trust) and a fresh SQLite
file, each migrated with driftloop's own migrations:

1. insert rate: ``--rows`` realistic rows (13 inputs as JSON, an output, a record id) through
   the log writer's own insert (``driftloop.stages.prediction_writer.insert_rows``), in
   batches of 1,000 (the writer's batch under load) and of 10 (a writer flushing every 0.2 s at
   about 50 requests/s); then, PostgreSQL only, the same with 4 writer processes at once (2
   replicas x 2 workers);
2. analysis read: ``driftloop.ab.rows.load_rows`` over the test's rows, 30% with feedback.

Prints a Markdown table with the 1-minute load average; ``--json PATH`` saves the figures.
Run from the repository root, about 2 minutes on 2 cores:

    .venv/bin/python benchmarks/database_bench.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # serving: the writer's own insert

from support.common import POSTGRES_ADMIN_URL, add_smoke, fresh_postgres  # noqa: E402

from driftloop.schema import upgrade  # noqa: E402
from driftloop.stages.prediction_writer import insert_rows  # noqa: E402
from driftloop.storage import ABTest, Feedback, make_engine  # noqa: E402

MODEL = "bench-model"
FEATURES = [f"feature_{i}" for i in range(13)]


@dataclass
class Figure:
    """One measurement: what was done, on which database, how many rows, how long."""

    database: str
    what: str
    rows: int
    seconds: float
    load1_before: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def make_rows(count: int, start: int, started_at: datetime) -> list[dict]:
    """Rows as the server logs them: half Production's, half Staging's, one a millisecond."""
    rows = []
    for i in range(start, start + count):
        staging = i % 2 == 1
        rows.append(
            {
                "request_id": uuid.uuid4().hex,
                "record_id": f"r{i}",
                "model_name": MODEL,
                "variant": "staging" if staging else "production",
                "model_version": "2" if staging else "1",
                "shadow": False,
                "status": 200,
                "assignment": "random",
                "inputs": {name: (i * 7 + k) % 101 / 10 for k, name in enumerate(FEATURES)},
                "missing": [],
                "output": {"prediction": i % 3, "probabilities": [0.2, 0.3, 0.5]},
                "error": None,
                "latency_ms": 3.5,
                "split_version": None,
                "created_at": started_at + timedelta(milliseconds=i),
            }
        )
    return rows


def insert_all(url: str, rows: int, batch: int, start: int, started_at: str, ready=None) -> None:
    """One writer: ``rows`` rows from row number ``start``, in batches of ``batch``; with
    ``ready`` (a barrier), it waits there first, so process start-up is not timed."""
    engine = make_engine(url)
    began = datetime.fromisoformat(started_at)
    with engine.connect():  # the connection is open before the clock starts, as in the writer
        pass
    if ready is not None:
        ready.wait()
    for offset in range(0, rows, batch):
        insert_rows(engine, make_rows(min(batch, rows - offset), start + offset, began))
    engine.dispose()


def timed_insert(url: str, label: str, rows: int, batch: int, writers: int) -> Figure:
    """Insert ``rows`` rows with ``writers`` processes at once (rows made inside the timing,
    as the writer encodes them inside its own)."""
    started_at = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    share = rows // writers
    load = os.getloadavg()[0]
    if writers == 1:
        began = time.perf_counter()
        insert_all(url, rows, batch, 0, started_at)
    else:
        context = multiprocessing.get_context("spawn")
        ready = context.Barrier(writers + 1)
        processes = [
            context.Process(
                target=insert_all, args=(url, share, batch, w * share, started_at, ready)
            )
            for w in range(writers)
        ]
        for process in processes:
            process.start()
        ready.wait()
        began = time.perf_counter()
        for process in processes:
            process.join()
            if process.exitcode != 0:
                raise SystemExit(f"a writer failed with exit code {process.exitcode}")
    seconds = time.perf_counter() - began
    what = f"insert, batches of {batch:,}, {writers} writer{'s' * (writers > 1)}"
    return Figure(label, what, share * writers, seconds, load)


def timed_analysis_read(url: str, label: str) -> Figure:
    """``load_rows`` for a test over every row, 30% of records with feedback."""
    from driftloop.ab.rows import load_rows

    engine = make_engine(url)
    with engine.begin() as connection:
        count = connection.execute(sa.text("select count(*) from predictions")).scalar_one()
        connection.execute(
            sa.insert(Feedback),
            [
                {
                    "model_name": MODEL,
                    "record_id": f"r{i}",
                    "value": i % 3,
                    "created_at": datetime.now(UTC),
                }
                for i in range(0, count, 3)
            ],
        )
    test = ABTest(
        model_name=MODEL,
        production_version="1",
        staging_version="2",
        status="running",
        started_at=datetime(2025, 12, 31, tzinfo=UTC),
    )
    load = os.getloadavg()[0]
    began = time.perf_counter()
    frame = load_rows(engine, test)
    seconds = time.perf_counter() - began
    engine.dispose()
    if len(frame) != count:
        raise SystemExit(f"load_rows returned {len(frame)} rows of {count}")
    return Figure(label, "A/B analysis read (load_rows, 30% with feedback)", count, seconds, load)


def migrated_postgres(admin_url: str, name: str) -> str:
    url = fresh_postgres(admin_url, name)
    upgrade(make_engine(url))
    return url


def fresh_sqlite(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / f'{name}.db'}"
    upgrade(make_engine(url))
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--json", type=Path)
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:  # every table, a few thousand rows
        args.rows, args.writers = 4_000, 2

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        for label in ("PostgreSQL", "SQLite"):
            for batch in (1_000, 10):
                rows = args.rows if batch == 1_000 else args.rows // 10
                name = f"driftloop_bench_db_{batch}"
                url = (
                    migrated_postgres(args.postgres_admin_url, name)
                    if label == "PostgreSQL"
                    else fresh_sqlite(Path(folder), name)
                )
                figures.append(timed_insert(url, label, rows, batch, writers=1))
                print(f"{figures[-1]}", flush=True)
                if batch == 1_000:
                    figures.append(timed_analysis_read(url, label))
                    print(f"{figures[-1]}", flush=True)
                if label == "PostgreSQL":
                    url = migrated_postgres(args.postgres_admin_url, f"{name}_w")
                    figures.append(timed_insert(url, label, rows, batch, args.writers))
                    print(f"{figures[-1]}", flush=True)

    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print("| database | what | rows | seconds | rows/s | load avg (1 min) before |")
    print("|---|---|---|---|---|---|")
    for f in figures:
        print(
            f"| {f.database} | {f.what} | {f.rows:,} | {f.seconds:.1f} | "
            f"{f.rows_per_second:,.0f} | {f.load1_before:.2f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps([asdict(f) | {"rows_per_second": f.rows_per_second} for f in figures])
        )


if __name__ == "__main__":
    main()
