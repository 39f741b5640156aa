"""Several models' loops at once on one stack: ``driftloop demo --models 3`` and the full-stack
test of several models both call :func:`run_models_loop`.

The models share one MLflow server (a registered model each), one Airflow (each model its own
DAGs and Assets, ``driftloop.orchestration.model_dags``), one prediction server
(``/models/<name>/predict``) and, on PostgreSQL, one database. Drift is planted in one of them
only (:data:`DRIFTING`, the stream ``make demo`` lands); the others land a clean batch, which
their own ``drift_monitor`` checks beside the drifting model's, and keep answering from their
Production versions while the drifting one retrains, goes to Staging, is A/B-tested and
promoted. Each model gets its own traffic thread, so a failed request of any model shows.

Here: the run; ``declared``: the generated config of the models and their data; ``environment``
and ``watch``: as for one model, with the model's name.
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

from driftloop.config import Settings
from driftloop.demo import environment, watch
from driftloop.demo.declared import DRIFTING, MODELS, write_config
from driftloop.demo.executor import CeleryRecord, LoopCelery
from driftloop.demo.loop import LoopDatabases, LoopPorts
from driftloop.demo.traffic import TrafficThread
from driftloop.events import DRIFT_ASSET_URI, model_asset_uri, model_dag_id
from driftloop.settings_loader import load_all
from driftloop.stack.airflow_stack import AirflowStack
from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stack.processes import wait_until
from driftloop.stack.project import project_path
from driftloop.vocabulary import ABDecision, DriftStatus, RetrainDecision

LOOP_DAGS = ("drift_monitor", "retrain", "ab_evaluate")
QUIET_RATE = 2.0  # requests per second to each model that does not drift
CHECK_TIMEOUT = 600.0  # for the drift_monitor runs of every model at once, on a busy machine


@dataclass
class ModelOutcome:
    """What happened to one model."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    drift_events: int = 0
    retrain_runs: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, str]] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)  # its audit log's moves
    traffic: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)  # its Production version's tags

    @property
    def decision(self) -> dict[str, Any] | None:
        return self.evaluations[-1] if self.evaluations else None


@dataclass
class ModelsLoopResult:
    """What happened to every model, for the summary and the full-stack test."""

    drifting: str
    models: dict[str, ModelOutcome] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    task_instances: list[dict[str, Any]] = field(default_factory=list)  # every model's loop DAGs
    celery: CeleryRecord | None = None  # where the tasks ran, on the CeleryExecutor

    @property
    def promoted(self) -> list[str]:
        """The models whose A/B test promoted their Staging version."""
        return [
            name
            for name, outcome in self.models.items()
            if outcome.decision and outcome.decision["decision"] == ABDecision.PROMOTE
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_models_loop(
    base_config: Path,
    home: Path,
    count: int = len(MODELS),
    databases: LoopDatabases | None = None,
    ports: LoopPorts | None = None,
    progress: Callable[[str], None] = print,
    ab_timeout: float = 240.0,
    traffic_rate: float = 12.0,
    celery: LoopCelery | None = None,
) -> ModelsLoopResult:
    """Run the first ``count`` of :data:`MODELS` from an empty ``home`` (their config derived
    from ``base_config``, the demo's) with drift planted in :data:`DRIFTING` only; stop
    everything before returning. ``databases``, ``ports`` and ``celery`` as for one model's
    loop (by default SQLite files under ``home``, the demo's ports, the LocalExecutor)."""
    databases, ports = databases or LoopDatabases(), ports or LoopPorts()
    executor_env = celery.airflow_env(databases.airflow) if celery else {}
    started = time.monotonic()
    home = home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    names = MODELS[:count]
    config = write_config(base_config, home, names)
    dags_folder = _dags_folder(config, home / "dags")
    result = ModelsLoopResult(DRIFTING, {name: ModelOutcome() for name in names})
    env = environment.environment(config, home, databases.driftloop)
    with (
        environment.environment_applied(env),
        environment.interruptible(),
        contextlib.ExitStack() as services,
    ):

        def say(message: str) -> None:
            progress(f"[{time.monotonic() - started:5.0f}s] {message}")

        say(f"models: {', '.join(names)}; drift is planted in {DRIFTING} only ({config})")
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
        models = load_all(config)
        engines = {name: _engine(models[name], services) for name in names}
        traffic = {name: _stream(models[name], say) for name in names}
        say("bootstrapping each model's first version (PyCaret) while Airflow starts")
        bootstraps = {
            name: environment.start_cli(
                env, home, "--model", name, "bootstrap", log_name=f"bootstrap-{name}"
            )
            for name in names
        }
        airflow_db = databases.airflow or f"sqlite:///{home / 'airflow' / 'airflow.db'}"
        airflow = services.enter_context(
            AirflowStack(
                dags_folder,
                home / "airflow",
                airflow_db,
                extra_env={**env, **executor_env},
                port=ports.airflow,
                startup_timeout=300,
                plugins_folder=project_path("plugins"),
            )
        )
        result.urls["Airflow UI"] = airflow.base_url
        workers = celery.start(services, airflow, say) if celery else None
        for name in names:
            for kind in LOOP_DAGS:
                airflow.wait_for_dag(model_dag_id(kind, name), timeout=120)
                airflow.unpause(model_dag_id(kind, name))
        say(f"Airflow is up with {len(names) * len(LOOP_DAGS)} loop DAGs: {airflow.base_url}")
        for name, process in bootstraps.items():
            environment.finish_cli(process, f"bootstrap-{name}", timeout=400)
            say(f"{name}: version 1 is Production")
        result.urls["driftloop page"] = environment.plugin_page(
            airflow, say, "/driftloop/api/models"
        )
        server = services.enter_context(
            PredictionServer({**os.environ, **env}, home / "server", port=ports.server)
        )
        say(f"one prediction server for {len(names)} models: {server.url}/models/<name>/predict")
        threads = {
            name: services.enter_context(
                TrafficThread(
                    f"{server.url}/models/{name}",
                    traffic[name],
                    models[name],
                    traffic_rate if name == DRIFTING else QUIET_RATE,
                )
            )
            for name in names
        }
        say(
            f"traffic with feedback: {traffic_rate:g} requests/s to {DRIFTING}, "
            f"{QUIET_RATE:g} to each other model"
        )
        _run_drifting(airflow, models, engines, result, say, ab_timeout)
        for thread in threads.values():
            thread.stop()
        for name in names:
            _read_outcome(airflow, server.url, engines[name], name, threads[name], result)
        result.urls["reports"] = f"{server.url}/models/<name>/reports/"
        dag_ids = tuple(model_dag_id(kind, name) for name in names for kind in LOOP_DAGS)
        result.task_instances = watch.task_instances(airflow, dag_ids)
        if workers is not None and celery is not None:
            result.celery = celery.record(workers)
            if result.celery.flower_url:
                result.urls["Flower"] = result.celery.flower_url
        result.seconds = time.monotonic() - started
        say("stopping every process the demo started")
    return result


def _run_drifting(
    airflow: AirflowStack,
    models: dict[str, Settings],
    engines: dict[str, sa.Engine],
    result: ModelsLoopResult,
    say: Callable[[str], None],
    ab_timeout: float,
) -> None:
    """Every model's drop checked at once, each by its own drift_monitor run: a clean batch
    for most, a day of data for the drifting model (its clean batches, then the drifting
    ones); then the drifting model's retrain, gate and A/B test."""
    drifting = models[DRIFTING]
    for path in sorted((drifting.storage.home / "stream").iterdir()):
        shutil.move(str(path), drifting.storage.landing_dir / path.name)
    runs = [watch.trigger_check(airflow, engines[name], name) for name in result.models]
    for run in runs:
        name = str(run[0])
        result.models[name].batches += watch.checks_of(
            airflow, engines[name], say, run, timeout=CHECK_TIMEOUT
        )
    outcome, engine = result.models[DRIFTING], engines[DRIFTING]
    if not any(batch["status"] == DriftStatus.DRIFT for batch in outcome.batches):
        say(f"{DRIFTING}: no drift found, so nothing to retrain")
        return
    gate = watch.await_retrain(airflow, engine, say, DRIFTING)
    if gate.get("decision") == RetrainDecision.STAGING:
        outcome.evaluations = watch.await_decision(airflow, engine, say, ab_timeout, DRIFTING)


def _read_outcome(
    airflow: AirflowStack,
    url: str,
    engine: sa.Engine,
    name: str,
    thread: TrafficThread,
    result: ModelsLoopResult,
) -> None:
    """What the model's loop recorded, and which version answers it now: the promoted one
    once the servers have picked the decision up (they poll the registry), else Production's."""
    from driftloop.storage import AuditRecord

    outcome = result.models[name]
    outcome.drift_events = len(airflow.asset_events(model_asset_uri(DRIFT_ASSET_URI, name)))
    outcome.retrain_runs = watch.retrain_runs(engine, name)
    outcome.versions, outcome.lineage = watch.versions(name)
    production = next(v["version"] for v in outcome.versions if "production" in v["aliases"])

    def answered() -> dict[str, Any] | None:
        answer = watch.answer_after(f"{url}/models/{name}", thread.records[0])
        return answer if answer.get("version") == production else None

    outcome.after = wait_until(
        answered, 60, f"{name}'s server to answer from Production version {production}"
    )
    outcome.traffic = thread.summary()
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(AuditRecord).where(AuditRecord.model_name == name).order_by(AuditRecord.id)
        ).all()
    outcome.promotions = [
        {
            "action": row.action,
            "actor": row.actor,
            "before": row.production_before,
            "after": row.production_after,
        }
        for row in rows
    ]


def _engine(settings: Settings, services: contextlib.ExitStack) -> sa.Engine:
    """The model's database, migrated (shared by every model on PostgreSQL; each model's own
    SQLite file otherwise)."""
    from driftloop.schema import upgrade
    from driftloop.storage import make_engine

    engine = make_engine(settings.database_url)
    services.callback(engine.dispose)
    upgrade(engine, model_name=settings.model.name)
    return engine


def _stream(settings: Settings, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The drifting model's stream as ``make demo`` lands it; for every other model its
    reference, one clean batch in its landing folder and its stream pool as traffic."""
    from driftloop.ingestion.stream import build_reference, replay, split_reference

    if settings.model.name == DRIFTING:
        return environment.prepare_stream(settings, lambda line: say(f"{DRIFTING} {line}"))
    build_reference(settings)
    (batch,) = replay(settings, "none", n_batches=1)
    _reference, pool = split_reference(settings)
    say(f"{settings.model.name}: one clean batch to land ({batch.rows} rows), {len(pool)} traffic")
    return pool.to_dict("records")


def _dags_folder(config: Path, folder: Path) -> Path:
    """A DAG folder of the run's own: the project's five DAG files and one file per model
    (``driftloop config dags``), so the checkout's ``dags/`` is never written to."""
    from driftloop.orchestration.model_dags import KINDS, write_model_files

    folder.mkdir(parents=True)
    for kind in KINDS:
        shutil.copy(project_path("dags") / f"{kind}.py", folder / f"{kind}.py")
    write_model_files(config, folder)
    return folder


def summary_lines(result: ModelsLoopResult) -> list[str]:
    """The summary a person reads at the end of the demo of several models."""
    lines = ["", "== summary"]
    for name, outcome in result.models.items():
        planted = " (drift planted)" if name == result.drifting else ""
        lines.append(f"-- {name}{planted}")
        verdicts = ", ".join(f"{b['batch']}: {b['status']}" for b in outcome.batches)
        lines.append(f"  batches: {verdicts or 'none'}; drift events: {outcome.drift_events}")
        for run in outcome.retrain_runs:
            lines.append(
                f"  retrain ({run['trigger']}): {run['decision']} "
                f"version {run['model_version'] or '-'}: {run['reason']}"
            )
        roles = ", ".join(f"v{v['version']} {v['stage']}" for v in outcome.versions)
        lines.append(f"  registry: {roles}")
        decision = outcome.decision
        lines.append(
            f"  A/B test {decision['test_id']}: {decision['decision']}: {decision['reason']}"
            if decision
            else "  A/B test: none"
        )
        traffic = outcome.traffic
        lines.append(
            f"  traffic: {sum(traffic.get('answered', {}).values())} answered "
            f"{traffic.get('answered')}, failed {traffic.get('failed') or 'none'}"
        )
        lines.append(f"  Production answers now from version {outcome.after.get('version')}")
    promoted = ", ".join(result.promoted) or "none"
    lines.append(f"promoted: {promoted}; the other models kept their Production versions")
    lines.append("URLs (while running): " + ", ".join(f"{k} {v}" for k, v in result.urls.items()))
    lines.append(f"took {result.seconds:.0f} s; every process the demo started is stopped")
    return lines
