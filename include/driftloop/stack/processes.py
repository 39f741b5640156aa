"""What every managed process shares: free ports, bounded waits, log tails, and stopping a
whole session (a process, its workers and their orphans)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Self, TypeVar

import psutil

VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")


class StackError(RuntimeError):
    """A service did not start, or did not reach an expected state in time."""


class Service:
    """A service used as a context manager: entering starts it, leaving always stops it, also
    when the start itself failed half-way (stop must be idempotent)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nobody listens there, else a free TCP port (a small race remains)."""
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # as the servers bind (gunicorn, nginx): connections of a stopped server that
            # linger in TIME_WAIT do not keep the port from its restart, a listener does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 1.0,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something other than None; fail loudly after ``timeout``.

    Nothing may hang: every wait is bounded, and the error says what was awaited plus whatever
    ``diagnostics`` can tell about why it did not happen.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            details = f"\n{diagnostics()}" if diagnostics else ""
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}{details}")
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


def session_members(session_id: int) -> list[psutil.Process]:
    """Every live process in the session, orphans re-parented to init included.

    Each service starts a session of its own; Airflow moves each task into a process group of
    its own, so a process group would miss running tasks, but the session survives both
    ``setpgid`` and the parent's death.
    """
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def terminate_session(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group and to every member of its session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    for member in session_members(process.pid):
        with contextlib.suppress(psutil.Error):
            member.terminate()


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL whatever of the session is still alive, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    stragglers = session_members(process.pid)
    for member in stragglers:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(stragglers, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def stop_session(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM, up to ``grace`` seconds for a clean exit, then SIGKILL. Never raises."""
    terminate_session(process)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    psutil.wait_procs(session_members(process.pid), timeout=max(0.0, deadline - time.monotonic()))
    kill_session(process)


def spawn(
    command: list[str], env: dict[str, str], cwd: Path, log_path: Path, append: bool = False
) -> tuple[subprocess.Popen, IO[bytes]]:
    """Start ``command`` in a session of its own, writing to ``log_path`` (after what is there
    with ``append``: a restart); return it and the open log file (the caller closes it after
    stopping the process)."""
    log_file = log_path.open("ab" if append else "wb")
    try:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except BaseException:
        log_file.close()
        raise
    return process, log_file


class HttpService(Service):
    """One command in a session of its own, ready once an HTTP path answers 200.

    Subclasses give the command and environment (``command``); the rest is shared: a port
    (the preferred one when free), the log file, the bounded wait for readiness that fails at
    once with the log if the process exits, and the graceful-then-forceful stop.
    """

    name = "service"
    ready_path = "/health"

    def __init__(
        self,
        workdir: Path,
        log_name: str,
        port: int | None,
        startup_timeout: float,
        stop_grace: float,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.log_path = self.workdir / log_name
        self.preferred_port = port
        self.startup_timeout, self.stop_grace = startup_timeout, stop_grace
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.preferred_port)
        command, env = self.command()
        self.process, self._log_file = spawn(command, env, self.workdir, self.log_path)
        wait_until(
            self._ready,
            self.startup_timeout,
            f"{self.name} on {self.url} to answer {self.ready_path}",
            interval=0.5,
            diagnostics=lambda: f"----- {self.log_path} -----\n{tail(self.log_path)}",
        )

    def _ready(self) -> bool | None:
        import requests

        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise StackError(
                f"{self.name} exited with {code} during start-up:\n{tail(self.log_path)}"
            )
        try:
            response = requests.get(f"{self.url}{self.ready_path}", timeout=5)
        except requests.RequestException:
            return None
        return True if response.status_code == 200 else None

    def stop(self) -> None:
        """SIGTERM to the session, ``stop_grace`` seconds, then SIGKILL. Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            stop_session(process, self.stop_grace)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)
