"""Registered versions without training: a tiny scikit-learn model logged once and registered
as many times as a test needs, for tests of registry moves (promotion, A/B decisions)."""

from __future__ import annotations

import numpy as np

from driftloop import registry
from driftloop.config import Settings


def register_versions(settings: Settings, count: int) -> list[str]:
    """Register ``count`` versions of one small model; return their numbers."""
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    client = registry.configure(settings)
    registry.ensure_registered_model(client, settings.model.name)
    model = DummyClassifier(strategy="most_frequent").fit(np.zeros((4, 1)), [5, 6, 6, 7])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    return [
        str(mlflow.register_model(info.model_uri, settings.model.name).version)
        for _ in range(count)
    ]


def production_and_staging(settings: Settings) -> tuple[str, str]:
    """Version 1 in Production, version 2 in Staging."""
    production, staging = register_versions(settings, 2)
    client = registry.configure(settings)
    registry.set_role(client, settings.model.name, production, registry.PRODUCTION)
    registry.set_role(client, settings.model.name, staging, registry.STAGING)
    return production, staging
