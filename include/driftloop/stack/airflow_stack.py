"""Real Airflow 3 components as separate processes (the demo, the full-stack test, compose).

Airflow 3 splits into processes that only meet through the metadata database and the
api-server: the scheduler (with the LocalExecutor's workers), the dag-processor that parses DAG
files, the triggerer, and the api-server, which serves both the public REST API and the
Execution API that every running task calls. Mocking any of them hides exactly the wiring
the demo and the tests exist to show, so `AirflowStack` starts all four, talks to them only
through the public REST API (/api/v2), and always stops every process it started, together with
its descendants.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any

import requests

from driftloop.stack.processes import (
    VENV_BIN,
    Service,
    StackError,
    free_port,
    kill_session,
    spawn,
    tail,
    terminate_session,
    wait_until,
)

AIRFLOW = str(VENV_BIN / "airflow")
# The order matters only for start-up: the api-server is last so that the others are already
# heart-beating by the time it answers its health check.
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowStackError(StackError):
    """The stack did not start, or did not reach an expected state in time."""


@dataclass
class _Component:
    """One running Airflow command and the log file it writes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


class AirflowStack(Service):
    """Scheduler, dag-processor, triggerer and api-server on one metadata database.

    Use as a context manager: entering migrates the database and starts the components,
    leaving stops them all, even when start-up or the test failed.
    """

    def __init__(
        self,
        dags_folder: Path,
        home: Path,
        sql_alchemy_conn: str,
        extra_env: dict[str, str] | None = None,
        startup_timeout: float = 180.0,
        stop_grace: float = 10.0,
        port: int | None = None,
        users: dict[str, tuple[str, str]] | None = None,
        plugins_folder: Path | None = None,
    ) -> None:
        """``users`` (name: (role, password)) switch sign-in on (else everyone is admin); the
        stack then calls the API as the first of them. ``plugins_folder``: Airflow plugins."""
        self.dags_folder = Path(dags_folder).resolve()
        self.users = dict(users or {})
        self.plugins_folder = Path(plugins_folder).resolve() if plugins_folder else None
        self.preferred_port = port
        self.home = Path(home).resolve()
        self.sql_alchemy_conn = sql_alchemy_conn
        self.extra_env = dict(extra_env or {})
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.port = 0
        self.env: dict[str, str] = {}
        self._components: list[_Component] = []
        self._http = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the api-server listens (public API, Execution API and UI)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Migrate the metadata database, start every component, wait until all are healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.preferred_port)
        self.env = self._child_env()
        self._migrate()
        for name in COMPONENTS:
            self._spawn(name)
        wait_until(
            self._healthy,
            self.startup_timeout,
            f"the api-server on {self.base_url} and every component to report healthy",
            diagnostics=self.logs_tail,
        )
        self._authenticate()

    def stop(self) -> None:
        """Stop every component and all of its descendants: SIGTERM, then SIGKILL.

        The api-server goes last: a task being stopped still reports its state through the
        Execution API, and retries for a long while if the api-server is already gone. Running
        tasks get SIGTERM too, but Airflow 3.3 then only calls the operator's `on_kill` and the
        scheduler waits for them, so a task still running at exit costs the full grace period.
        Idempotent, and never raises for processes that are already gone.
        """
        components, self._components = self._components, []
        deadline = time.monotonic() + self.stop_grace
        workers = [component for component in components if component.name != "api-server"]
        servers = [component for component in components if component.name == "api-server"]
        for batch in (workers, servers):
            for component in batch:
                terminate_session(component.process)
            for component in batch:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for component in components:  # whatever survived the grace period, orphans included
            kill_session(component.process)
            component.log_file.close()
        self._http.close()

    def _child_env(self) -> dict[str, str]:
        """The environment every Airflow command runs with; the caller's own stays untouched.

        Inherited AIRFLOW* variables are dropped so a developer's shell cannot leak into the test.
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(
            {
                "PATH": os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # LocalExecutor starts `parallelism` workers up front (32 by default).
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Task workers reach the api-server here; the default assumes port 8080.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                # New files are picked up on refresh; changed files re-parsed after the interval.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Each process would otherwise pick its own random secret, and the api-server
                # would reject the task tokens the scheduler signs.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
                # The log servers default to fixed ports (8793, 8794), which collide across stacks.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        )
        if self.users:
            passwords = self.home / "simple_auth_manager_passwords.json"
            passwords.write_text(json.dumps({n: p for n, (_, p) in self.users.items()}))
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(
                f"{name}:{role}" for name, (role, _) in self.users.items()
            )
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
        if self.plugins_folder is not None:
            env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(self.plugins_folder)
        if self.sql_alchemy_conn.startswith("postgresql") and not find_spec("asyncpg"):
            # Airflow derives a `postgresql+asyncpg` URL for its async engine and fails at import
            # without that driver. Only multi-team auth, the experimental run-wait endpoint and
            # the state store use that engine, so without asyncpg it is switched off instead.
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = ""
        env.update(self.extra_env)
        return env

    def _log_path(self, name: str) -> Path:
        return self.home / f"logs-{name}.log"

    def _migrate(self) -> None:
        """Create Airflow's schema; the components refuse to start on an empty database."""
        log_path = self._log_path("db-migrate")
        with log_path.open("wb") as log:
            try:
                result = subprocess.run(
                    [AIRFLOW, "db", "migrate"],
                    env=self.env,
                    cwd=self.home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    timeout=self.startup_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise AirflowStackError(
                    f"`airflow db migrate` took over {self.startup_timeout:.0f}s:\n"
                    f"{tail(log_path, 40)}"
                ) from exc
        if result.returncode != 0:
            raise AirflowStackError(
                f"`airflow db migrate` exited with {result.returncode}:\n{tail(log_path, 40)}"
            )

    def _spawn(self, name: str, append: bool = False) -> None:
        """Start one component in a session of its own, so it can be stopped as a whole."""
        command = [AIRFLOW, name]
        if name == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
        log_path = self._log_path(name)
        process, log_file = spawn(command, self.env, self.home, log_path, append)
        self._components.append(_Component(name, process, log_path, log_file))

    def crash_and_restart(self, name: str) -> None:
        """SIGKILL one component's session (a crash: nothing of it cleans up) and start it
        again, its log continued; what it had in hand is for the new one to find."""
        (crashed,) = [c for c in self._components if c.name == name]
        self._components.remove(crashed)
        kill_session(crashed.process)
        crashed.log_file.close()
        self._spawn(name, append=True)

    def _check_alive(self) -> None:
        """Fail at once, with its log, if a component died: waiting on would only time out."""
        for component in self._components:
            code = component.process.poll()
            if code is not None:
                raise AirflowStackError(
                    f"airflow {component.name} exited with {code}:\n{tail(component.log_path, 60)}"
                )

    def _healthy(self) -> bool | None:
        """True once the api-server answers and reports every other component healthy."""
        self._check_alive()
        try:
            response = self._http.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return None
        if response.status_code != 200:
            return None
        health = response.json()
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        if all((health.get(part) or {}).get("status") == "healthy" for part in parts):
            return True
        return None

    def _authenticate(self) -> None:
        """Fetch a JWT for the public API: signed in as the first of ``users`` when sign-in is
        on; otherwise (`simple_auth_manager_all_admins`) the api-server hands out admin tokens
        without credentials (GET /auth/token), and using one keeps the calls valid should that
        middleware stop injecting its own header.
        """
        if self.users:
            name = next(iter(self.users))
            token = self.token(name, self.users[name][1])
        else:
            response = self._http.get(f"{self.base_url}/auth/token", timeout=10)
            response.raise_for_status()
            token = response.json()["access_token"]
        self._http.headers["Authorization"] = f"Bearer {token}"

    def token(self, username: str, password: str) -> str:
        """A JWT for one of ``users``, as ``POST /auth/token`` hands it out."""
        response = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=10,
        )
        if response.status_code != 201:
            raise AirflowStackError(f"sign-in as {username} answered {response.status_code}")
        return str(response.json()["access_token"])

    # -- diagnostics -----------------------------------------------------------------------

    def logs_tail(self, lines: int = 30) -> str:
        """The end of every component's log, for error messages."""
        names = ["db-migrate", *COMPONENTS]
        return "\n".join(
            f"----- airflow {name} ({self._log_path(name)}) -----\n"
            f"{tail(self._log_path(name), lines)}"
            for name in names
        )

    # -- public REST API -------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API (`path` below /api/v2) and return the decoded JSON body."""
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise AirflowStackError(
                f"{method} /api/v2{path} answered {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The raw response of a public REST API call, for callers that expect errors."""
        kwargs.setdefault("timeout", 30)
        return self._http.request(method, f"{self.base_url}/api/v2{path}", **kwargs)

    def fetch(self, path: str, **kwargs: Any) -> requests.Response:
        """GET any path of the api-server (a plugin's app, the UI) as the signed-in user."""
        kwargs.setdefault("timeout", 60)
        return self._http.get(f"{self.base_url}{path}", **kwargs)

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files the dag-processor could not import, with their tracebacks."""
        return list(self.api("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed `dag_id` and registered it; return the DAG."""

        def probe() -> dict[str, Any] | None:
            self._check_alive()
            response = self.request("GET", f"/dags/{dag_id}")
            if response.status_code == 200 and not response.json()["is_stale"]:
                return dict(response.json())
            return None

        def diagnostics() -> str:
            return f"import errors: {self.import_errors()}\n{self.logs_tail()}"

        return wait_until(probe, timeout, f"DAG {dag_id!r} to be parsed", diagnostics=diagnostics)

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG: new DAGs start paused, and paused DAGs neither run nor get triggered."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a manual run now and return its run_id.

        Airflow 3 requires `logical_date` in the body; None means a run without one.
        """
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run as the REST API describes it."""
        return dict(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of `dag_id`, oldest first."""
        params = {"limit": 100, "order_by": "id"}
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of one run, with their states."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return list(self.api("GET", path)["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """Wait until a run finishes; return its final state ("success" or "failed")."""

        def probe() -> str | None:
            self._check_alive()
            try:
                state = str(self.dag_run(dag_id, run_id)["state"])
            except requests.Timeout:  # a busy api-server answers the next poll; the deadline holds
                return None
            return state if state in TERMINAL_RUN_STATES else None

        def diagnostics() -> str:
            state = self.dag_run(dag_id, run_id)["state"]
            tasks = [(ti["task_id"], ti["state"]) for ti in self.task_instances(dag_id, run_id)]
            return f"run {run_id} is {state}, tasks {tasks}\n{self.logs_tail()}"

        return wait_until(
            probe, timeout, f"run {run_id!r} of {dag_id!r} to finish", diagnostics=diagnostics
        )

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """Every event recorded for the asset, oldest first, each with its `extra`.

        The events endpoint filters by asset id only, so the asset is looked up first. Airflow
        normalises URIs (`driftloop://smoke` is stored as `driftloop://smoke/`) and uses the URI
        as the name when none is given, so either may match what the DAG author wrote.
        """
        assets = self.api("GET", "/assets", params={"uri_pattern": uri, "limit": 100})["assets"]
        ids = [asset["id"] for asset in assets if uri in (asset["uri"], asset["name"])]
        events: list[dict[str, Any]] = []
        for asset_id in ids:
            params = {"asset_id": asset_id, "limit": 100, "order_by": "timestamp"}
            events += self.api("GET", "/assets/events", params=params)["asset_events"]
        return sorted(events, key=lambda event: event["timestamp"])
