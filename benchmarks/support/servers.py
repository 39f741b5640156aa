"""Starting and stopping servers, each in its own process group, and the CPU they use.

Why: a benchmark that leaves a gunicorn or MLflow server behind spoils the next
measurement on a 2-core machine; every server here is stopped, its whole group, on the way
out, and its CPU is read from /proc so load generator, server and the rest can be told apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.common import CONFIG, ROOT, VENV_BIN

log = logging.getLogger("benchmarks.servers")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A server started in its own process group."""

    name: str
    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after 30 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM; killing it", self.name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of the group
        self.process.wait(10)


def free_port() -> int:
    """A TCP port on the loopback interface nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This environment without DRIFTLOOP_* overrides, with the virtualenv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start(name: str, command: list[str], env: dict[str, str], port: int, home: Path) -> Server:
    """Start ``command`` in a new session (its own process group), logging to the home."""
    log_path = home / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log_path)


def start_driftloop(settings: Any, workers: int, threads: int, extra_env: dict[str, str]) -> Server:
    """driftloop under gunicorn with the project's gunicorn config (``extra_env``: overrides
    such as ``DRIFTLOOP_SERVING__MICRO_BATCH_WAIT_MS``)."""
    home = settings.storage.home
    return start_gunicorn(
        "driftloop",
        CONFIG,
        home,
        workers,
        threads,
        {**extra_env, "DRIFTLOOP_STORAGE__HOME": str(home)},
    )


def start_gunicorn(
    name: str, config: Path, home: Path, workers: int, threads: int, extra_env: dict[str, str]
) -> Server:
    """driftloop under gunicorn with the project's gunicorn config, serving what ``config``
    declares (every model of a ``models:`` map, or the one ``DRIFTLOOP_MODEL__NAME`` in
    ``extra_env`` names); its log and metrics files under ``home``."""
    port = free_port()
    env = clean_env()
    env.update(extra_env)
    env.update(
        DRIFTLOOP_CONFIG=str(config),
        DRIFTLOOP_BIND=f"127.0.0.1:{port}",
        DRIFTLOOP_WORKERS=str(workers),
        DRIFTLOOP_THREADS=str(threads),
        PROMETHEUS_MULTIPROC_DIR=str(
            home / ("prometheus" if name == "driftloop" else f"prometheus-{name}")
        ),
    )
    command = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        str(ROOT / "serving" / "gunicorn.conf.py"),
        "serving.app:create_app()",
    ]
    return start(name, command, env, port, home)


def start_mlflow(settings: Any, workers: int | None = None) -> Server:
    """``mlflow models serve`` (127.0.0.1) with its defaults (one uvicorn worker), or with
    ``-w workers``."""
    port = free_port()
    env = clean_env()
    env["MLFLOW_TRACKING_URI"] = settings.mlflow_tracking_uri
    command = [
        str(VENV_BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{settings.model.name}/1",
        "--env-manager",
        "local",
        "-p",
        str(port),
    ]
    name = "mlflow"
    if workers is not None:
        command += ["-w", str(workers)]
        name = f"mlflow-w{workers}"
    return start(name, command, env, port, settings.storage.home)


def worker_pids(server: Server) -> list[int]:
    """The pids of the server's direct children (gunicorn's workers), oldest first."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == server.process.pid:  # ppid, after the state field
                children.append((int(fields[19]), int(stat.parent.name)))  # start time, pid
    return [pid for _, pid in sorted(children)]


def rss_mib(pid: int) -> float:
    """A process's resident memory now (VmRSS), in MiB; 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(server: Server, path: str, timeout: float = 180.0) -> None:
    """Poll ``path`` until it answers 200; fail with the server's log if it dies or stalls."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + path, timeout=5).status_code == 200:
                return
        if server.process.poll() is not None:
            break
        time.sleep(0.5)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{server.name} not ready within {timeout:.0f} s:\n{tail}")


@contextlib.contextmanager
def running(server: Server, ready_path: str) -> Iterator[Server]:
    """The server, ready; stopped (its whole process group) on the way out, whatever happens."""
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        server.stop()


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after the name start at state (field 3)
                total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every core; not idle, not waiting for I/O)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def cpu_counters(pgid: int) -> tuple[float, float, float]:
    """(this process, the server's process group, the whole machine), in CPU seconds."""
    return time.process_time(), group_cpu_seconds(pgid), machine_busy_seconds()


def wait_for_quiet(limit: float, max_wait: float, sample: float = 3.0) -> float:
    """Wait (at most ``max_wait`` seconds) until the machine's busy cores, over ``sample``
    seconds, fall below ``limit``; return the last figure. Other work on a 2-core machine
    would otherwise be measured as the servers' slowness."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(sample)
        busy = (machine_busy_seconds() - before) / sample
        if busy < limit or time.monotonic() >= deadline:
            if busy >= limit:
                log.warning("the machine is still busy (%.2f cores); measuring anyway", busy)
            return busy


# --- load generator ------------------------------------------------------------------------
