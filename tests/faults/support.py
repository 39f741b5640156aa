"""What the fault tests share: a cheap served home (a small model in Production, no training),
the prediction server under gunicorn on it, a closed-loop load that survives dropped
connections, and the prediction log read back by request id."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import requests
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stack.prediction_server import PredictionServer
from driftloop.stages import role_moves
from driftloop.storage import make_engine
from tests.conftest import ROOT

CONFIG = ROOT / "driftloop.yaml"


def served_home(home: Path, database_url: str, tracking_uri: str | None = None) -> Settings:
    """driftloop's tables in ``database_url`` and a small scikit-learn model registered as
    Production (in ``tracking_uri``, else an embedded MLflow under ``home``): what a server
    needs, in seconds."""
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    settings = load_settings(
        CONFIG,
        storage={"home": home},
        database={"url": database_url},
        mlflow={"tracking_uri": tracking_uri},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    features = settings.feature_columns
    frame = pd.DataFrame(np.ones((4, len(features))), columns=features)
    model = DummyClassifier(strategy="prior").fit(frame, [5, 6, 6, 7])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    version = mlflow.register_model(info.model_uri, settings.model.name).version
    role_moves.set_role(client, settings.model.name, str(version), registry.PRODUCTION)
    return settings


def server_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment a deployment gives the server: the config file and overrides only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(
        DRIFTLOOP_CONFIG=str(CONFIG),
        DRIFTLOOP_STORAGE__HOME=str(settings.storage.home),
        DRIFTLOOP_DATABASE__URL=settings.database_url,
        DRIFTLOOP_MLFLOW__TRACKING_URI=settings.mlflow_tracking_uri,
        DRIFTLOOP_PIN_CPUS="0",
    )
    return env | variables


def record(settings: Settings, n: int) -> dict[str, float]:
    return {name: 1.0 + (n % 7) / 10 for name in settings.feature_columns}


@dataclass
class Load:
    """What a closed-loop load saw: request ids answered 200, other answers, and requests that
    got no answer at all (the connection dropped or was refused)."""

    answered: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)  # answered per model version
    refused: list[int] = field(default_factory=list)  # non-200 statuses
    dropped: list[str] = field(default_factory=list)  # the exception's type per request
    progress: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, answered: int, timeout: float) -> None:
        """Until ``answered`` requests have been answered (fails after ``timeout``)."""
        with self.progress:
            if not self.progress.wait_for(lambda: len(self.answered) >= answered, timeout):
                raise AssertionError(f"only {len(self.answered)} answers in {timeout:.0f} s")


@contextmanager
def closed_loop_load(
    url: str, settings: Settings, clients: int, new_connections: bool = False
) -> Iterator[Load]:
    """``clients`` threads post one record after another until the block ends. A dropped
    connection is recorded and the client goes on (with a new connection)."""
    load, stop = Load(), threading.Event()

    def client(n: int) -> None:
        session, i = requests.Session(), 0
        while not stop.is_set():
            headers = {"Connection": "close"} if new_connections else {}
            try:
                answer = session.post(
                    f"{url}/predict",
                    json={"record": record(settings, n * 1000 + i)},
                    headers=headers,
                    timeout=30,
                )
            except requests.RequestException as exc:
                with load.progress:
                    load.dropped.append(_cause(exc))
                session = requests.Session()
                if stop.wait(0.05):  # a refused connect returns at once: do not spin
                    break
                continue
            finally:
                i += 1
            with load.progress:
                if answer.status_code == 200:
                    body = answer.json()
                    load.answered.append(body["request_id"])
                    load.versions[body["version"]] += 1
                else:
                    load.refused.append(answer.status_code)
                load.progress.notify_all()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def _cause(error: BaseException) -> str:
    """The innermost cause's type: ConnectionRefusedError, ConnectionResetError, ..."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return type(error).__name__


def logged_requests(database_url: str) -> Counter[str]:
    """Rows of the prediction log per request id."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            ids = connection.execute(sa.text("select request_id from predictions")).scalars()
            return Counter(ids)
    finally:
        engine.dispose()


def _is_writer(process: psutil.Process) -> bool | None:
    """Whether ``process`` is a prediction-log writer; None when it is gone or a zombie."""
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return "driftloop.stages.prediction_writer" in " ".join(process.cmdline())
    except psutil.Error:
        return None


def workers(server: PredictionServer) -> list[psutil.Process]:
    """The gunicorn master's live worker processes (not their prediction-log writers)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children()
    return [child for child in children if _is_writer(child) is False]


def writers_of(process: psutil.Process) -> list[psutil.Process]:
    return [child for child in process.children() if _is_writer(child)]


def describe(load: Load) -> dict[str, Any]:
    return {
        "answered": len(load.answered),
        "versions": load.versions,
        "refused": Counter(load.refused),
        "dropped": Counter(load.dropped),
    }
