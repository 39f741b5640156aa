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

Here: the run and its summary; ``environment``: the environment, the stream and the background
``driftloop`` commands; ``watch``: triggering and reading the DAG runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.demo import environment, watch
from driftloop.demo.environment import CLEAN_BATCHES
from driftloop.demo.traffic import TrafficThread
from driftloop.settings_loader import load_settings
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.project import project_path
from driftloop.vocabulary import DriftStatus, RetrainDecision


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
    # every task instance of drift_monitor, retrain and ab_evaluate: dag_id, task_id, map_index,
    # state, queue, hostname
    task_instances: list[dict[str, Any]] = field(default_factory=list)
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
    """Run the loop once from an empty ``home`` on the LocalExecutor; stop everything before
    returning (several models or the CeleryExecutor: ``driftloop.demo.models``)."""
    started = time.monotonic()
    result = LoopResult()
    home = home.resolve()
    # Airflow reads these as folders of the checkout; say so before starting anything
    dags_folder, plugins_folder = project_path("dags"), project_path("plugins")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = environment.environment(config, home, databases.driftloop)
    with (
        environment.environment_applied(env),
        environment.interruptible(),
        contextlib.ExitStack() as services,
    ):

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
        traffic = environment.prepare_stream(settings, say)
        say("bootstrapping the first model (PyCaret) while Airflow starts")
        bootstrap = environment.start_cli(env, home, "bootstrap")
        airflow_db = databases.airflow or f"sqlite:///{home / 'airflow' / 'airflow.db'}"
        airflow = services.enter_context(
            AirflowStack(
                dags_folder,
                home / "airflow",
                airflow_db,
                extra_env=env,
                port=ports.airflow,
                startup_timeout=300,
                plugins_folder=plugins_folder,
            )
        )
        result.urls["Airflow UI"] = airflow.base_url
        for dag_id in ("drift_monitor", "retrain", "ab_evaluate"):
            airflow.wait_for_dag(dag_id, timeout=120)
            airflow.unpause(dag_id)
        say(f"Airflow is up: {airflow.base_url}")
        environment.finish_cli(bootstrap, "bootstrap", timeout=400)
        say("version 1 is Production")
        result.urls["driftloop page"] = environment.plugin_page(airflow, say)
        server = services.enter_context(
            PredictionServer({**os.environ, **env}, home / "server", port=ports.server)
        )
        result.urls["server docs"] = f"{server.url}/docs"
        say(f"prediction server ready: {server.url}")
        simulator = services.enter_context(
            TrafficThread(server.url, traffic, settings, traffic_rate)
        )
        say(
            f"traffic: {traffic_rate:g} requests/s with feedback, "
            f"from {len(traffic)} held-back rows"
        )

        engine = sa.create_engine(settings.database_url)
        services.callback(engine.dispose)
        landing = sorted((home / "stream").iterdir())
        drops = [[path] for path in landing[:CLEAN_BATCHES]] + [landing[CLEAN_BATCHES:]]
        for drop in drops:
            for path in drop:
                shutil.move(str(path), settings.storage.landing_dir / path.name)
            # one drift_monitor run: it ingests the drop and checks every unchecked batch
            checked = watch.check_batches(airflow, engine, say)
            result.batches += checked
            if any(batch["status"] == DriftStatus.DRIFT for batch in checked):
                result.gate = watch.await_retrain(airflow, engine, say)
                break
        result.drift_events = len(airflow.asset_events("driftloop://drift"))
        result.retrain_runs = watch.retrain_runs(engine)
        if result.gate and result.gate.get("decision") == RetrainDecision.STAGING:
            result.evaluations = watch.await_decision(airflow, engine, say, ab_timeout)
        simulator.stop()
        result.urls["reports"] = f"{server.url}/reports/ (drift/ and ab/)"
        time.sleep(2 * settings.serving.poll_seconds)  # servers pick up the decision
        result.after = watch.answer_after(server.url, simulator.records[0])
        result.traffic = simulator.summary()
        result.versions, result.lineage = watch.versions()
        result.task_instances = watch.task_instances(
            airflow, ("drift_monitor", "retrain", "ab_evaluate")
        )
        result.seconds = time.monotonic() - started
        say("stopping every process the demo started")
    return result


def summary_lines(result: LoopResult) -> list[str]:
    """The summary a person reads at the end of the demo."""
    lines = ["", "== summary", "batches:"]
    for batch in result.batches:
        drifted = f" ({', '.join(batch['drifted'])})" if batch["drifted"] else ""
        lines.append(f"  {batch['batch']}: {batch['status']}{drifted}")
    lines.append(f"drift events: {result.drift_events}")
    for run in result.retrain_runs:
        lines.append(
            f"retrain ({run['trigger']}): {run['decision']} "
            f"version {run['model_version'] or '-'}: {run['reason']}"
        )
        merged = (run.get("details") or {}).get("merged_drift_checks")
        if merged:
            lines.append(
                f"  on drift check {run['drift_check_id']}, the newest waiting; checks "
                f"{', '.join(map(str, merged))} merged into it"
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
