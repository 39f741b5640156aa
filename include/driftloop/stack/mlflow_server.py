"""A real `mlflow server` as a separate process: the tracking server, registry and UI.

driftloop's DAG tasks, its CLI, the server and the tests all reach MLflow over HTTP, as they
would in production; an embedded store would hide the proxied artifact upload and download and
the registry calls that go through the REST API.
"""

from __future__ import annotations

import os
from pathlib import Path

from driftloop.stack.processes import VENV_BIN, HttpService

MLFLOW = str(VENV_BIN / "mlflow")


class MlflowServer(HttpService):
    """`mlflow server` on a backend store (PostgreSQL or SQLite) with proxied local artifacts."""

    name = "mlflow server"

    def __init__(
        self,
        backend_store_uri: str,
        workdir: Path,
        startup_timeout: float = 120.0,
        stop_grace: float = 10.0,
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, "mlflow-server.log", port, startup_timeout, stop_grace)
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = self.workdir / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """The URI clients use (tracking, registry and proxied artifacts)."""
        return self.url

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.artifacts_destination.mkdir(parents=True, exist_ok=True)
        # A developer's MLFLOW_* variables must not change how the server behaves.
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
        return command, env
