"""A real `mlflow server` as a separate process, for integration tests.

driftloop's DAG tasks, its CLI and the test all reach MLflow over HTTP, as they would in
production; an embedded SQLite store would hide the proxied artifact upload and download and
the registry calls that go through the REST API. `MlflowServer` starts the server in a session
of its own (so its uvicorn workers can be stopped with it), waits for `/health`, and always
stops every process of that session on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil
import requests

from .airflow_stack import free_port, wait_until

MLFLOW = str(Path(sys.executable).parent / "mlflow")


class MlflowServerError(RuntimeError):
    """The server did not start or answer its health check in time."""


def _tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of the server log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log file)"


def _session_members(session_id: int) -> list[psutil.Process]:
    """Every live process of the server's session, workers re-parented to init included."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


class MlflowServer:
    """`mlflow server` on a PostgreSQL backend store with proxied local artifacts.

    Use as a context manager; leaving stops the server and its workers (SIGTERM, then SIGKILL
    after `stop_grace` seconds), even when start-up failed.
    """

    def __init__(
        self,
        backend_store_uri: str,
        workdir: Path,
        startup_timeout: float = 120.0,
        stop_grace: float = 10.0,
    ) -> None:
        self.backend_store_uri = backend_store_uri
        self.workdir = Path(workdir).resolve()
        self.artifacts_destination = self.workdir / "mlartifacts"
        self.log_path = self.workdir / "mlflow-server.log"
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def tracking_uri(self) -> str:
        """The URI clients use (tracking, registry and proxied artifacts)."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until `/health` answers; fail with the log tail if not."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts_destination.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # A developer's MLFLOW_* variables must not change how the server under test behaves.
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        # The job runner (GenAI scorers, trace roll-ups) starts seven huey consumers; driftloop
        # uses none of it, and on a small machine they compete with training for the CPUs.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        command = [
            MLFLOW,
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            str(self.artifacts_destination),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                self._healthy,
                self.startup_timeout,
                f"mlflow server on {self.tracking_uri} to answer /health",
                interval=0.5,
                diagnostics=lambda: f"----- {self.log_path} -----\n{_tail(self.log_path)}",
            )
        except RuntimeError as exc:
            raise MlflowServerError(str(exc)) from None

    def _healthy(self) -> bool | None:
        """True once /health answers 200; raise at once if the server already exited."""
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise MlflowServerError(
                f"mlflow server exited with {code} during start-up:\n{_tail(self.log_path)}"
            )
        try:
            response = requests.get(f"{self.tracking_uri}/health", timeout=5)
        except requests.RequestException:
            return None
        return True if response.status_code == 200 else None

    def stop(self) -> None:
        """Stop the whole session: SIGTERM, wait up to `stop_grace`, then SIGKILL. Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_grace
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=self.stop_grace)
            members = _session_members(process.pid)
            psutil.wait_procs(members, timeout=max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            stragglers = _session_members(process.pid)
            for member in stragglers:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            psutil.wait_procs(stragglers, timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log, for assertion messages."""
        return _tail(self.log_path, lines)
