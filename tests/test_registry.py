"""``registry.configure``: MLflow is configured once per process for the same settings, and
again whenever the settings differ or something pointed MLflow elsewhere (the count of the
real work through a wrapper; a whole retrain configuring once: tests/stages/test_retrain.py)."""

from __future__ import annotations

import mlflow

from driftloop import registry
from tests.support.registry_home import fresh_store


def test_configure_works_once_until_the_settings_or_mlflow_change(settings, monkeypatch):
    fresh_store(settings)  # a migrated empty store, copied
    monkeypatch.setattr(registry, "_configured", None)  # as in a new process
    real = registry._configure
    configured: list[str] = []

    def counting(settings, key):
        configured.append(settings.mlflow.experiment)
        return real(settings, key)

    monkeypatch.setattr(registry, "_configure", counting)
    client = registry.configure(settings)
    assert registry.configure(settings) is client and configured == [settings.mlflow.experiment]

    other = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"experiment": "another"})}
    )
    assert registry.configure(other) is not client  # other settings: configured again
    assert mlflow.get_experiment_by_name("another") is not None
    again = registry.configure(settings)
    first = settings.mlflow.experiment
    assert again is not client and configured == [first, "another", first]

    uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"{uri}-elsewhere")  # pointed elsewhere behind configure's back
    assert registry.configure(settings) is not again and len(configured) == 4
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == uri
    assert registry.configure(settings) is registry.configure(settings) and len(configured) == 4
