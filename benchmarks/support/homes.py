"""Trained model homes: a home with version 1 registered as Production.

Why: serving, replica, model and before/after benchmarks each need a home with a trained,
registered model; training one is the slow part of a smoke run, so a smoke home is trained
once (one small model, 2 folds) and reused by every smoke run that follows.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from support.common import CONFIG, ROOT

log = logging.getLogger("benchmarks.homes")
SMOKE_HOME = ROOT / "var" / "bench-smoke-home"
SMOKE_TRAINING = {"models": ["dt"], "folds": 2, "budget_minutes": 0.5}

EXTRA_TREES = {"models": ["et"], "folds": 3, "budget_minutes": 1}


def prepare_home(
    home: Path,
    reuse: bool,
    training: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> Any:
    """A home with version 1 registered (Production), trained with ``training`` (default:
    ExtraTrees only, 3 folds); rebuilt unless ``reuse``. driftloop's tables in
    ``database_url`` (default: SQLite in the home)."""
    from driftloop.schema import upgrade
    from driftloop.settings_loader import load_settings
    from driftloop.stages.retrain import bootstrap
    from driftloop.storage import make_engine

    settings = load_settings(
        CONFIG,
        storage={"home": home},
        database={"url": database_url},
        training=EXTRA_TREES if training is None else training,
    )
    if reuse and (home / "mlflow.db").is_file():
        log.info("reusing the home %s", home)
        return settings
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    started = time.perf_counter()
    decision = bootstrap(settings, engine)
    log.info(
        "bootstrap: version %s %s in %.0f s",
        decision.model_version,
        decision.outcome,
        time.perf_counter() - started,
    )
    engine.dispose()
    return settings


def load_pipeline(settings: Any, version: str = "1") -> Any:
    """The registered pipeline, as the servers load it."""
    import mlflow.sklearn

    from driftloop import registry

    registry.configure(settings)
    return mlflow.sklearn.load_model(f"models:/{settings.model.name}/{version}")


def describe_estimator(settings: Any, pipeline: Any) -> dict[str, Any]:
    """The final estimator, its thread settings and the registry role of version 1."""
    from driftloop import registry

    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    params = estimator.get_params()
    threads = {k: v for k, v in params.items() if k.split("__")[-1] in {"n_jobs", "nthread"}}
    production = registry.by_alias(
        registry.configure(settings), settings.model.name, registry.PRODUCTION
    )
    return {
        "class": type(estimator).__name__,
        "n_estimators": params.get("n_estimators"),
        "threads": threads,
        "production_version": production and production.version,
        "pipeline_steps": [name for name, _ in getattr(pipeline, "steps", [])],
    }


def feature_frame(settings: Any, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of the data set, features only, in the model's order."""
    from driftloop.data import read_table

    frame = read_table(settings.data.path, settings.data)
    return frame[settings.feature_columns].head(rows).reset_index(drop=True)


def smoke_home_copy(name: str) -> Any:
    """A copy of the shared smoke home (its own database, logs and metrics; the registry's
    artifacts stay where the original has them): a second server without a second training."""
    settings = smoke_home()
    copy = SMOKE_HOME.with_name(f"{SMOKE_HOME.name}-copy-{name}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(settings.storage.home, copy)
    return prepare_home(copy, True, SMOKE_TRAINING)


def smoke_home(training: dict[str, Any] | None = None, database_url: str | None = None) -> Any:
    """The shared smoke home (``var/bench-smoke-home``), trained once with a decision tree
    (or ``training``, in a home of its own) and reused by every later smoke run; driftloop's
    tables in ``database_url`` when given (the caller migrates a reused home's database)."""
    home = SMOKE_HOME if training is None else SMOKE_HOME.with_name(
        SMOKE_HOME.name + "-" + "-".join(training.get("models", ["default"]))
    )  # fmt: skip
    ready = home / "smoke-home-ready"  # written last: a half-trained home is trained again
    settings = prepare_home(home, ready.is_file(), training or SMOKE_TRAINING, database_url)
    ready.touch()
    return settings
