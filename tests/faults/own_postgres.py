"""A PostgreSQL instance of the test's own (``initdb`` in a temporary folder, its own port), so
that a test can stop and start it under load without touching the shared server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.stack.processes import free_port


def _bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class OwnPostgres:
    """``initdb`` and ``pg_ctl`` on a folder and port of its own; as root, run as ``postgres``
    (PostgreSQL refuses to run as root)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.data, self.log = folder / "data", folder / "postgres.log"
        self.bin = _bin()
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.user, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=50"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


@contextmanager
def own_postgres(database: str = "driftloop") -> Iterator[OwnPostgres]:
    """A running instance with an empty ``database``; stopped and removed afterwards."""
    if _bin() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    # not under pytest's folder: as root that is private, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="driftloop-pg-"))
    os.chmod(folder, 0o755)
    instance = OwnPostgres(folder, free_port())
    if instance.user:
        shutil.chown(folder, "postgres", "postgres")
    try:
        instance.init()
        instance.start()
        engine = sa.create_engine(instance.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'create database "{database}"'))
        engine.dispose()
        yield instance
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            instance.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
