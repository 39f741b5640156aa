"""Several declared models registered without training, for the tests of a server that answers
for many: ``examples/three_models.yaml`` (white_wine, red_wine: classifiers; white_alcohol: a
regression), each model a small scikit-learn pipeline fitted on a few hundred of its own rows
and logged with its signature, in its own embedded MLflow store, all sharing one database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from driftloop import registry
from driftloop.config import Settings
from driftloop.data import read_table
from driftloop.schema import upgrade
from driftloop.settings_loader import load_all
from driftloop.stages import role_moves
from driftloop.storage import make_engine
from tests.conftest import ROOT
from tests.support.registry_home import fresh_store

EXAMPLE = ROOT / "examples" / "three_models.yaml"
ROWS = 300


def rows_of(settings: Settings, count: int = ROWS) -> pd.DataFrame:
    """The model's first ``count`` rows, features and target."""
    return read_table(settings.data.path, settings.data).head(count)


def records_of(settings: Settings, count: int) -> list[dict]:
    return rows_of(settings, count)[list(settings.feature_columns)].to_dict("records")


def register(settings: Settings, *, depth: int = 3) -> str:
    """Fit a small tree on the model's rows, log it with its signature and register it as a
    new version of the model; return the version's number."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    fresh_store(settings)
    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    frame = rows_of(settings)
    features = frame[list(settings.feature_columns)]
    kind = (
        DecisionTreeClassifier if settings.data.task == "classification" else DecisionTreeRegressor
    )
    pipeline = make_pipeline(kind(max_depth=depth, random_state=0)).fit(
        features, frame[settings.data.target]
    )
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(features, pipeline.predict(features)),
            input_example=features.head(5),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    return str(mlflow.register_model(info.model_uri, settings.model.name).version)


@contextmanager
def three_models(home: Path) -> Iterator[dict[str, Settings]]:
    """The example's three models below ``home``, one shared SQLite database; each has a
    version 1 in Production, and red_wine a deeper version 2 in Staging."""
    saved = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("DRIFTLOOP_") and k != "DRIFTLOOP_TEST_POSTGRES_URL"
    }
    os.environ["DRIFTLOOP_STORAGE__HOME"] = str(home)
    os.environ["DRIFTLOOP_DATABASE__URL"] = f"sqlite:///{home / 'driftloop.db'}"
    try:
        models = load_all(EXAMPLE)
        engine = make_engine(os.environ["DRIFTLOOP_DATABASE__URL"])
        upgrade(engine)
        engine.dispose()
        for settings in models.values():
            client = registry.configure(settings)
            role_moves.set_role(
                client, settings.model.name, register(settings), registry.PRODUCTION
            )
        red = models["red_wine"]
        client = registry.configure(red)
        role_moves.set_role(client, "red_wine", register(red, depth=6), registry.STAGING)
        yield models
    finally:
        for key in ("DRIFTLOOP_STORAGE__HOME", "DRIFTLOOP_DATABASE__URL"):
            os.environ.pop(key, None)
        os.environ.update(saved)
