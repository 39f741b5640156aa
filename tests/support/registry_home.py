"""Registered versions without training: a tiny scikit-learn model logged once and registered
as many times as a test needs, for tests of registry moves (promotion, A/B decisions)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

from driftloop import registry
from driftloop.config import Settings
from driftloop.stages import role_moves

_TEMPLATE: list[Path] = []  # an empty MLflow store, migrated once per test process


def fresh_store(settings: Settings) -> None:
    """Copy an empty, migrated MLflow SQLite store into the test's home: MLflow migrating a
    new store took about a quarter of every registry test's setup."""
    target = settings.storage.home / "mlflow.db"
    if settings.mlflow.tracking_uri or target.exists():
        return
    if not _TEMPLATE:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        folder = Path(tempfile.mkdtemp(prefix="driftloop-mlflow-store-"))
        atexit.register(shutil.rmtree, folder, True)
        store = SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", folder.as_uri())
        store.engine.dispose()
        _TEMPLATE.append(folder / "mlflow.db")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], target)


def register_versions(settings: Settings, count: int) -> list[str]:
    """Register ``count`` versions of one small model; return their numbers."""
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    fresh_store(settings)
    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    model = DummyClassifier(strategy="most_frequent").fit(np.zeros((4, 1)), [5, 6, 6, 7])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],  # not inferred: inference imports and probes
        )
    return [
        str(mlflow.register_model(info.model_uri, settings.model.name).version)
        for _ in range(count)
    ]


def production_and_staging(settings: Settings) -> tuple[str, str]:
    """Version 1 in Production, version 2 in Staging."""
    production, staging = register_versions(settings, 2)
    client = registry.configure(settings)
    role_moves.set_role(client, settings.model.name, production, registry.PRODUCTION)
    role_moves.set_role(client, settings.model.name, staging, registry.STAGING)
    return production, staging
