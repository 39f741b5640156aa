"""Paths, versions, peak memory, child processes, databases and the ``--smoke`` flag.

Why: every benchmark needs the same few facts about the machine and the same careful
measurements (VmHWM, not ``ru_maxrss``), written once here rather than copied per script.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "driftloop.yaml"
VENV_BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
EVIDENTLY_VENV = ROOT / "var" / "bench-evidently-venv"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
EVIDENTLY_REQUIREMENTS = ROOT / "benchmarks" / "requirements-evidently.txt"
UV = ROOT / ".venv" / "bin" / "uv"
SMOKE_HELP = "tiny sizes, well under a minute: checks the benchmark still runs end to end"


# --- the --smoke flag ----------------------------------------------------------------------


def add_smoke(parser: argparse.ArgumentParser, help: str = SMOKE_HELP) -> None:
    """The ``--smoke`` option every benchmark has (``ci/benchmarks_smoke.sh`` runs it)."""
    parser.add_argument("--smoke", action="store_true", help=help)


def skipped_in_smoke(what: str, why: str = "it needs Evidently's separate virtualenv") -> None:
    """Say, in the output, what a smoke run leaves out and why."""
    print(f"smoke: skipping {what} ({why})", flush=True)


# --- the machine and the libraries ---------------------------------------------------------


def versions(*names: str) -> dict[str, str]:
    """Python's and the named distributions' versions."""
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where a figure was measured: date, cores, CPU, memory, Python, kernel."""
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }


def print_header(title: str) -> None:
    """A result's first lines: what, where and the command that produced it."""
    print(f"# {title}\n\nmachine: {platform.platform()}, {cpu_model()}, python "
          f"{platform.python_version()}; command: {' '.join(sys.argv)}\n", flush=True)  # fmt: skip


# --- peak memory ---------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in KiB (Linux)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark, so a step's own peak can be read (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    """This process's peak resident memory. ``VmHWM``, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` over from the parent across fork and exec, so every child would report the
    parent's peak."""
    return proc_status()["VmHWM"] / 1024


# --- child processes -----------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The parent's environment without telemetry; a fixed hash seed for repeatable runs."""
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        ITERATIVE_DO_NOT_TRACK="1",
        EVIDENTLY_DISABLE_TELEMETRY="1",
        PYTHONHASHSEED="0",
    )
    return env


def wait_child(pid: int, timeout: float) -> tuple[int, Any, bool]:
    """Wait for ``pid`` at most ``timeout`` s; its exit code, rusage and whether it was killed."""
    deadline = time.monotonic() + timeout
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), usage, False
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)  # the child's own session: it and its helpers only
            _, status, usage = os.wait4(pid, 0)
            return os.waitstatus_to_exitcode(status), usage, True
        time.sleep(0.02)


def ensure_evidently_venv() -> None:
    """Create Evidently's pinned virtualenv with uv when it is missing."""
    if EVIDENTLY_PYTHON.exists():
        return
    print(f"creating {EVIDENTLY_VENV.relative_to(ROOT)} from {EVIDENTLY_REQUIREMENTS.name}")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([UV, "venv", "-q", "--python", base, EVIDENTLY_VENV], check=True)
    subprocess.run(
        [UV, "pip", "sync", "-q", "--python", EVIDENTLY_PYTHON, EVIDENTLY_REQUIREMENTS], check=True
    )


# --- databases -----------------------------------------------------------------------------


def fresh_postgres(admin_url: str, name: str) -> str:
    """An empty database called ``name`` (dropped first if it exists); its URL. One fixed name
    per benchmark, so a run never measures an earlier run's rows and a killed run leaves at
    most one database behind."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return url
