"""The whole loop for real on one machine: ``driftloop demo`` (``make demo``) and the
full-stack test both call :func:`run_loop`.

It starts the services as separate processes with the commands the compose file uses (an
MLflow server, Airflow's scheduler, dag-processor, triggerer and api-server on the
LocalExecutor, the prediction server under gunicorn), bootstraps a Production model, and then
lets the loop run: batches land one by one and ``drift_monitor`` checks each; drift emits the
Asset that starts ``retrain``; the new version goes to Staging; a traffic simulator sends
requests and feedback for rows no model trained on (batches held back from the stream); and
``ab_evaluate`` decides. The demo triggers the DAG runs through Airflow's REST API instead of
waiting for their hourly schedules; everything else happens on its own. Every process it
started is stopped at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.settings_loader import load_settings
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import VENV_BIN, StackError, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "concept"  # features shift and the labels move with them: the old model is wrong
SHIFTED = ("alcohol", "pH", "density", "residual sugar", "chlorides")
CLEAN_BATCHES, DRIFTING_BATCHES = 3, 3  # the drifting ones land together, as a day's data
DECIDED = {"promote", "reject", "inconclusive"}


@dataclass(frozen=True)
class LoopDatabases:
    """Where each service keeps its state; ``None`` means SQLite files under the home."""

    airflow: str | None = None
    mlflow: str | None = None
    driftloop: str | None = None


@dataclass(frozen=True)
class LoopPorts:
    """Preferred ports (a busy one is replaced by a free one)."""

    airflow: int | None = 8080
    mlflow: int | None = 5000
    server: int | None = 8000


@dataclass
class LoopResult:
    """What happened, for the summary and for the full-stack test's assertions."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    drift_events: int = 0
    retrain_runs: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, str]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)  # tags of Production at the end
    urls: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def decision(self) -> dict[str, Any] | None:
        return self.evaluations[-1] if self.evaluations else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_loop(
    config: Path,
    home: Path,
    databases: LoopDatabases = LoopDatabases(),
    ports: LoopPorts = LoopPorts(),
    progress: Callable[[str], None] = print,
    ab_timeout: float = 240.0,
    traffic_rate: float = 12.0,
) -> LoopResult:
    """Run the loop once from an empty ``home``; stop everything before returning."""
    started = time.monotonic()
    result = LoopResult()
    home = home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = _environment(config, home, databases)
    with _environment_applied(env), _interruptible(), contextlib.ExitStack() as services:

        def say(message: str) -> None:
            progress(f"[{time.monotonic() - started:5.0f}s] {message}")

        say("starting the MLflow server (tracking, registry, UI)")
        mlflow_server = services.enter_context(
            MlflowServer(
                databases.mlflow or f"sqlite:///{home / 'mlflow.db'}",
                home / "mlflow-server",
                port=ports.mlflow,
            )
        )
        os.environ["DRIFTLOOP_MLFLOW__TRACKING_URI"] = env["DRIFTLOOP_MLFLOW__TRACKING_URI"] = (
            mlflow_server.tracking_uri
        )
        result.urls["MLflow UI"] = mlflow_server.tracking_uri
        settings = load_settings(config)
        traffic = _prepare_stream(settings, say)
        say("bootstrapping the first model (PyCaret) while Airflow starts")
        bootstrap = _start_cli(env, home, "bootstrap")
        airflow = services.enter_context(
            AirflowStack(
                ROOT / "dags",
                home / "airflow",
                databases.airflow or f"sqlite:///{home / 'airflow' / 'airflow.db'}",
                extra_env=env,
                port=ports.airflow,
                startup_timeout=300,
            )
        )
        result.urls["Airflow UI"] = airflow.base_url
        for dag_id in ("drift_monitor", "retrain", "ab_evaluate"):
            airflow.wait_for_dag(dag_id, timeout=120)
            airflow.unpause(dag_id)
        say(f"Airflow is up: {airflow.base_url}")
        _finish_cli(bootstrap, "bootstrap", timeout=400)
        say("version 1 is Production")
        server = services.enter_context(
            PredictionServer({**os.environ, **env}, home / "server", port=ports.server)
        )
        result.urls["server docs"] = f"{server.url}/docs"
        say(f"prediction server ready: {server.url}")
        simulator = services.enter_context(
            _TrafficThread(server.url, traffic, settings, traffic_rate)
        )
        say(
            f"traffic: {traffic_rate:g} requests/s with feedback, from {len(traffic)} held-back rows"
        )

        engine = sa.create_engine(settings.database_url)
        services.callback(engine.dispose)
        landing = sorted((home / "stream").iterdir())
        drops = [[path] for path in landing[:CLEAN_BATCHES]] + [landing[CLEAN_BATCHES:]]
        for drop in drops:
            for path in drop:
                shutil.move(str(path), settings.storage.landing_dir / path.name)
            batch = _check_batch(airflow, engine, say)  # ingests the drop, checks the oldest
            result.batches.append(batch)
            if batch["status"] == "drift":
                result.gate = _await_retrain(airflow, engine, say)
                break
        result.drift_events = len(airflow.asset_events("driftloop://drift"))
        result.retrain_runs = _retrain_runs(engine)
        if result.gate and result.gate.get("decision") == "staging":
            result.evaluations = _await_decision(airflow, engine, say, ab_timeout)
        simulator.stop()
        result.urls["reports"] = f"{server.url}/reports/ (drift/ and ab/)"
        time.sleep(2 * settings.serving.poll_seconds)  # servers pick up the decision
        result.after = _answer_after(server.url, simulator.records[0])
        result.traffic = simulator.summary()
        result.versions, result.lineage = _versions()
        result.seconds = time.monotonic() - started
        say("stopping every process the demo started")
    return result


# --- set-up ---------------------------------------------------------------------------------


def _environment(config: Path, home: Path, databases: LoopDatabases) -> dict[str, str]:
    env = {
        "DRIFTLOOP_CONFIG": str(config.resolve()),
        "DRIFTLOOP_STORAGE__HOME": str(home),
        "DRIFTLOOP_MLFLOW__TRACKING_URI": "",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
    }
    if databases.driftloop:
        env["DRIFTLOOP_DATABASE__URL"] = databases.driftloop
    return env


@contextlib.contextmanager
def _environment_applied(env: dict[str, str]) -> Iterator[None]:
    """This process sees what the services see (its own calls load the same settings)."""
    saved = {
        k: os.environ.get(k) for k in [*env, *[k for k in os.environ if k.startswith("DRIFTLOOP_")]]
    }
    for key in list(os.environ):
        if key.startswith("DRIFTLOOP_") and key not in env and key != "DRIFTLOOP_TEST_POSTGRES_URL":
            del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: the services are stopped on the way out."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prepare_stream(settings: Settings, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The database, the reference split, and the stream: the first batches to land one by one
    (clean, then drifting), the rest held back as the traffic no model ever trains on."""
    import pandas as pd

    from driftloop.data import read_table
    from driftloop.storage import make_engine, upgrade
    from driftloop.stream import build_reference, replay

    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    build_reference(settings)
    written = replay(settings, SCENARIO, start_batch=CLEAN_BATCHES, shift_features=SHIFTED)
    landing, held_back = (
        written[: CLEAN_BATCHES + DRIFTING_BATCHES],
        written[CLEAN_BATCHES + DRIFTING_BATCHES :],
    )
    stream = settings.storage.home / "stream"
    stream.mkdir()
    for batch in landing:
        shutil.move(str(batch.path), stream / batch.path.name)
    frame = pd.concat([read_table(b.path, settings.data) for b in held_back], ignore_index=True)
    traffic_dir = settings.storage.home / "traffic"
    traffic_dir.mkdir()
    for batch in held_back:
        shutil.move(str(batch.path), traffic_dir / batch.path.name)
    say(
        f"stream: {CLEAN_BATCHES} clean and {DRIFTING_BATCHES} drifting batches to land "
        f"({SCENARIO} shift of {', '.join(SHIFTED)}); {len(held_back)} batches held back as traffic"
    )
    return frame.to_dict("records")


def _start_cli(env: dict[str, str], home: Path, *args: str) -> subprocess.Popen[str]:
    with (home / f"cli-{args[0]}.log").open("w") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [str(VENV_BIN / "driftloop"), *args],
            env={**os.environ, **env},
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def _finish_cli(process: subprocess.Popen[str], name: str, timeout: float) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise StackError(f"`driftloop {name}` took over {timeout:.0f} s") from None
    if process.returncode != 0:
        raise StackError(f"`driftloop {name}` exited with {process.returncode}; see cli-{name}.log")


# --- the loop -------------------------------------------------------------------------------


def _check_batch(airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None]) -> dict:
    """One drift_monitor run: ingest what landed, check the oldest unchecked batch."""
    from driftloop.storage import Batch, DriftCheck

    run_id = airflow.trigger("drift_monitor")
    state = airflow.wait_for_run("drift_monitor", run_id, timeout=240)
    if state != "success":
        raise StackError(f"drift_monitor run {run_id} {state}\n{airflow.logs_tail()}")
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                Batch.name,
                DriftCheck.status,
                DriftCheck.drift_share,
                DriftCheck.drifted_features,
                DriftCheck.html_path,
            )
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .order_by(DriftCheck.id.desc())
            .limit(1)
        ).first()
    if row is None:
        raise StackError("drift_monitor found no batch to check")
    batch = {
        "batch": row.name,
        "status": row.status,
        "drift_share": row.drift_share,
        "drifted": list(row.drifted_features or []),
        "report": row.html_path,
    }
    name = row.name
    drifted = f": {', '.join(batch['drifted'])}" if batch["drifted"] else ""
    say(f"drift_monitor: {name} {batch['status']}{drifted}")
    return batch


def _await_retrain(airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None]) -> dict:
    """The drift event starts retrain on its own (an Asset-triggered run); wait for its gate."""
    say("drift announced on driftloop://drift: waiting for the retrain run it starts")
    run = wait_until(
        lambda: next(iter(airflow.dag_runs("retrain")), None), 120, "the Asset-triggered retrain"
    )
    say(f"retrain started ({run['run_type']}); PyCaret compares models, MLflow tracks the run")
    state = airflow.wait_for_run("retrain", run["dag_run_id"], timeout=600)
    if state != "success":
        raise StackError(f"retrain run {run['dag_run_id']} {state}\n{airflow.logs_tail()}")
    gate = _retrain_runs(engine)[-1]
    say(f"gate: version {gate['model_version']} {gate['decision']}: {gate['reason']}")
    return gate


def _await_decision(
    airflow: AirflowStack, engine: sa.Engine, say: Callable[[str], None], timeout: float
) -> list[dict[str, Any]]:
    """Trigger ab_evaluate until it decides (or the time is up); return every evaluation."""
    from driftloop.storage import ABEvaluation

    deadline = time.monotonic() + timeout
    evaluations: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        time.sleep(10)
        run_id = airflow.trigger("ab_evaluate")
        airflow.wait_for_run("ab_evaluate", run_id, timeout=180)
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(ABEvaluation).order_by(ABEvaluation.id.desc()).limit(1)
            ).first()
        if row is None:
            say("ab_evaluate: no test yet (Staging has answered no request)")
            continue
        evaluation = {
            "id": row.id,
            "test_id": row.test_id,
            "decision": row.decision,
            "reason": row.reason,
            "metric": row.metric,
            "production": row.production_value,
            "staging": row.staging_value,
            "samples": (row.production_samples, row.staging_samples),
            "p_value": row.p_value,
            "report": row.html_path,
            "statistics": row.statistics,
        }
        if evaluations and evaluations[-1]["id"] == evaluation["id"]:
            continue
        evaluations.append(evaluation)
        say(f"ab_evaluate: {row.decision}: {row.reason}")
        if row.decision in DECIDED:
            break
    return evaluations


def _retrain_runs(engine: sa.Engine) -> list[dict[str, Any]]:
    from driftloop.storage import RetrainRun

    with engine.connect() as connection:
        rows = connection.execute(sa.select(RetrainRun).order_by(RetrainRun.id)).all()
    return [
        {
            "trigger": r.trigger,
            "decision": r.decision,
            "reason": r.reason,
            "model_version": r.model_version,
            "production_version": r.production_version,
            "challenger_score": r.challenger_score,
            "production_score": r.production_score,
            "drift_check_id": r.drift_check_id,
        }
        for r in rows
    ]


def _versions() -> tuple[list[dict[str, str]], dict[str, str]]:
    """Every version with its role, and the lineage tags of the one in Production."""
    from driftloop import registry

    settings = load_settings()
    production = registry.by_alias(
        registry.configure(settings), settings.model.name, registry.PRODUCTION
    )
    return registry.list_versions(settings), dict(production.tags) if production else {}


def _answer_after(url: str, record: dict[str, Any]) -> dict[str, Any]:
    """Which version answers a Production request once the decision is in."""
    import requests

    response = requests.post(
        f"{url}/predict", json={"record": record}, headers={"X-Variant": "production"}, timeout=30
    )
    body = response.json()
    return {
        "status": response.status_code,
        "version": body.get("version"),
        "variant": body.get("variant"),
    }


class _TrafficThread:
    """The simulator in a thread until stopped: one-record requests from sticky clients, each
    followed by its true label as feedback."""

    def __init__(self, url: str, rows: list[dict[str, Any]], settings: Settings, rate: float):
        from serving.simulator import SimulationResult

        target = settings.data.target
        self.records = [{k: v for k, v in r.items() if k != target} for r in rows]
        self.labels = [r[target] for r in rows]
        self.url, self.rate = url, rate
        self.result = SimulationResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self.error: Exception | None = None

    def __enter__(self) -> _TrafficThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        from serving.simulator import simulate

        try:
            simulate(
                self.url,
                self.records,
                self.labels,
                None,
                clients=200,
                seed=1,
                rate=self.rate,
                stop=self._stop,
                result=self.result,
            )
        except Exception as exc:  # reported in the summary, never a hang
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def summary(self) -> dict[str, Any]:
        return {
            "answered": {f"{v} v{n}": c for (v, n), c in sorted(self.result.answered.items())},
            "correct": {f"{v} v{n}": c for (v, n), c in sorted(self.result.correct.items())},
            "failed": {str(k): c for k, c in self.result.failed.items()},
            "feedback": self.result.feedback,
            "error": None if self.error is None else str(self.error),
        }


def summary_lines(result: LoopResult) -> list[str]:
    """The summary a person reads at the end of the demo."""
    lines = ["", "== summary", "batches:"]
    for batch in result.batches:
        drifted = f" ({', '.join(batch['drifted'])})" if batch["drifted"] else ""
        lines.append(f"  {batch['batch']}: {batch['status']}{drifted}")
    lines.append(f"drift events: {result.drift_events}")
    for run in result.retrain_runs:
        lines.append(
            f"retrain ({run['trigger']}): {run['decision']} version {run['model_version'] or '-'}: {run['reason']}"
        )
    lines.append("registry:")
    for v in result.versions:
        lines.append(
            f"  version {v['version']}: alias {v['aliases']}, stage {v['stage']}, gate {v['gate']}"
        )
    decision = result.decision
    if decision:
        lines.append(
            f"A/B test {decision['test_id']}: {decision['decision']}: {decision['reason']}"
        )
        lines.append(f"  report: {decision['report']}")
    else:
        lines.append("A/B test: no decision")
    traffic = result.traffic
    lines.append(
        f"traffic: {sum(traffic.get('answered', {}).values())} answered {traffic.get('answered')}, "
        f"{traffic.get('feedback')} feedback, failed {traffic.get('failed') or 'none'}"
    )
    lines.append(f"Production answers now from version {result.after.get('version')}")
    lines.append("URLs (while running): " + ", ".join(f"{k} {v}" for k, v in result.urls.items()))
    lines.append(f"took {result.seconds:.0f} s; every process the demo started is stopped")
    return lines
