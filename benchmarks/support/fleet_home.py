"""A home of many registered models of mixed kinds, without PyCaret (issue 30, item 6).

Why: a server of 50 models is measured on 50 real registered versions, but training each with
PyCaret would take most of an hour; what the server does with a model (download it from its
own MLflow store, unpickle it, predict through its micro-batcher, unload it) does not depend
on who fitted it. So each model is a scikit-learn pipeline fitted here in well under a second
on its own rows, logged with its signature and input example and registered as version 1 in
Production, as ``tests/support/served_models.py`` does for the tests.

The kinds cycle through :data:`KINDS`: classifiers and regressions, trees, forests, boosting
and linear models, on the white and the red wine; model ``i`` is ``m{i:03d}_<kind>``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.common import ROOT

log = logging.getLogger("benchmarks.fleet_home")
WHITE = ROOT / "data" / "wine" / "winequality-white.csv"
RED = ROOT / "data" / "wine" / "winequality-red.csv"
READY = "fleet-home-ready"  # written last: a half-registered home is registered again


@dataclass(frozen=True)
class Kind:
    """One kind of model: its data, target, task and estimator."""

    name: str
    data: Path
    target: str
    task: str
    estimator: Callable[[], Any]


def _kinds() -> list[Kind]:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    def scaled(model: Any) -> Callable[[], Any]:
        return lambda: make_pipeline(StandardScaler(), model)

    forest = dict(n_estimators=50, max_depth=10, n_jobs=1, random_state=0)
    return [
        Kind("rf_white", WHITE, "quality", "classification",
             lambda: make_pipeline(RandomForestClassifier(**forest))),
        Kind("ridge_white_alcohol", WHITE, "alcohol", "regression", scaled(Ridge())),
        Kind("dt_red", RED, "quality", "classification",
             lambda: make_pipeline(DecisionTreeClassifier(max_depth=8, random_state=0))),
        Kind("gbr_red_alcohol", RED, "alcohol", "regression",
             lambda: make_pipeline(GradientBoostingRegressor(n_estimators=50, random_state=0))),
        Kind("logreg_white", WHITE, "quality", "classification",
             scaled(LogisticRegression(max_iter=500))),
        Kind("et_red", RED, "quality", "classification",
             lambda: make_pipeline(ExtraTreesClassifier(**forest))),
        Kind("rfr_white_alcohol", WHITE, "alcohol", "regression",
             lambda: make_pipeline(RandomForestRegressor(**{**forest, "n_estimators": 30}))),
    ]  # fmt: skip


def model_names(count: int) -> list[tuple[str, Kind]]:
    """The ``count`` models' names and kinds, cycling through the kinds."""
    kinds = _kinds()
    return [(f"m{i:03d}_{kinds[i % len(kinds)].name}", kinds[i % len(kinds)]) for i in range(count)]


def write_config(home: Path, count: int, max_loaded: int) -> Path:
    """A driftloop.yaml declaring ``count`` models under ``models:``, one shared SQLite
    database, at most ``max_loaded`` models resident per worker."""
    models = {}
    for name, kind in model_names(count):
        entry: dict[str, Any] = {}
        if kind.data != WHITE:
            entry["data"] = {"path": str(kind.data)}
        if kind.task != "classification":
            entry.setdefault("data", {}).update(target=kind.target, task=kind.task)
        models[name] = entry
    document = {
        "data": {"path": str(WHITE), "separator": ";", "target": "quality",
                 "task": "classification"},
        "storage": {"home": str(home / "var")},
        "database": {"url": f"sqlite:///{home / 'many.db'}"},
        "serving": {"max_loaded_models": max_loaded},
        "training": {"models": ["dt"], "folds": 2},
        "models": models,
    }  # fmt: skip
    config = home / "driftloop.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _template(home: Path) -> Path:
    """An empty, migrated MLflow store, copied into each model's home (MLflow migrating 50
    new stores would take most of the setup)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = home / "mlflow-template.db"
    if not path.exists():
        store = SqlAlchemyStore(f"sqlite:///{path}", (home / "template-artifacts").as_uri())
        store.engine.dispose()
    return path


def register(settings: Any, kind: Any, template: Path) -> str:
    """Fit the kind's estimator on the model's rows, log it with its signature and register
    it as a new version in Production; its number."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from driftloop import registry
    from driftloop.data import read_table
    from driftloop.stages import role_moves

    store = settings.storage.home / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, store)
    client = registry.configure(settings)
    name = settings.model.name
    role_moves.ensure_registered_model(client, name)
    frame = read_table(settings.data.path, settings.data)
    features = frame[list(settings.feature_columns)]
    pipeline = kind.estimator().fit(features, frame[settings.data.target])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(features.head(50), pipeline.predict(features.head(50))),
            input_example=features.head(5),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],  # not inferred: inference imports and probes
        )
    version = str(mlflow.register_model(info.model_uri, name).version)
    role_moves.set_role(client, name, version, registry.PRODUCTION)
    return version


def fleet_home(home: Path, count: int, max_loaded: int, reuse: bool) -> dict[str, Any]:
    """``count`` models registered under ``home`` (rebuilt unless ``reuse`` finds a finished
    one with as many models); their settings by name, as a many-model server loads them."""
    from driftloop.schema import upgrade
    from driftloop.settings_loader import load_all
    from driftloop.storage import make_engine

    ready = home / READY
    if reuse and ready.is_file() and ready.read_text() == f"{count} {max_loaded}":
        log.info("reusing the home %s", home)
        return load_all(home / "driftloop.yaml")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = write_config(home, count, max_loaded)
    models = load_all(config)
    engine = make_engine(next(iter(models.values())).database_url)
    upgrade(engine)
    engine.dispose()
    template = _template(home)
    kinds = dict(model_names(count))
    started = time.perf_counter()
    for name, settings in models.items():
        register(settings, kinds[name], template)
    log.info("registered %d models in %.0f s", count, time.perf_counter() - started)
    ready.write_text(f"{count} {max_loaded}")
    return models


def single_database(home: Path) -> str:
    """A second, migrated SQLite database for the one-model server's prediction log (two
    servers writing one SQLite file would wait on each other's locks)."""
    from driftloop.schema import upgrade
    from driftloop.storage import make_engine

    url = f"sqlite:///{home / 'one.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
