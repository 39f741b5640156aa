"""The models a server answers with: Production and Staging, loaded by alias from the registry.

A snapshot (both models, their feature schema and the traffic split) is immutable and replaced
whole, so a request sees either the old pair or the new one, never a mix. A background poll
(and the admin reload) loads new versions beside the old ones before swapping. When the
registry cannot be reached, the last good snapshot keeps serving and ``/ready`` says so.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.ab.traffic import PRODUCTION, STAGING, TrafficSplit, load_split
from driftloop.config import Settings
from serving.batching import MicroBatcher

log = logging.getLogger(__name__)

_NUMERIC_TYPES = {"double", "float", "long", "integer"}


@dataclass(frozen=True)
class FeatureSchema:
    """What a request record must hold: names, whether each is numeric, and which ones the
    version can take missing (null or absent)."""

    names: tuple[str, ...]
    numeric: frozenset[str]
    nullable: frozenset[str] = frozenset()


@dataclass
class LoadedModel:
    """One registered version, ready to predict single-threaded through a micro-batcher."""

    variant: str
    version: str
    pipeline: Any
    schema: FeatureSchema
    classes: list[Any] | None
    batcher: MicroBatcher = field(repr=False)

    def predict(self, frame: pd.DataFrame) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions (and class probabilities for classifiers) for every row of ``frame``."""
        return self.batcher.submit(frame)


@dataclass(frozen=True)
class ModelSnapshot:
    production: LoadedModel | None = None
    staging: LoadedModel | None = None
    split: TrafficSplit = field(default_factory=TrafficSplit)
    registry_ok: bool = False
    error: str | None = "models not loaded yet"
    refreshed_at: datetime | None = None

    def model(self, variant: str) -> LoadedModel | None:
        return self.production if variant == PRODUCTION else self.staging


def _classes(pipeline: Any) -> list[Any] | None:
    """Class labels in the order of ``predict_proba`` columns (PyCaret encodes labels)."""
    if not hasattr(pipeline, "predict_proba"):
        return None
    steps = dict(getattr(pipeline, "steps", []))
    encoder = getattr(steps.get("label_encoding"), "transformer", None)
    labels = getattr(encoder, "classes_", None)
    if labels is None:
        labels = getattr(pipeline, "classes_", None)
    return None if labels is None else [x.item() if hasattr(x, "item") else x for x in labels]


def _plain(values: Any) -> list[Any]:
    return [x.item() if hasattr(x, "item") else x for x in values]


def predictor(pipeline: Any, classes: list[Any] | None, example: pd.DataFrame | None = None):
    """A function from a frame to (predictions, probabilities), for the micro-batcher.

    A classifier's prediction is the most probable class, so one ``predict_proba`` pass gives
    both (a second pass would double the cost of every batch). That shortcut is taken only when
    it agrees with ``predict`` on the version's input example; an estimator with its own
    decision threshold keeps two passes.
    """

    def two_passes(frame: pd.DataFrame) -> tuple[list[Any], list[list[float]] | None]:
        predictions = _plain(pipeline.predict(frame))
        probabilities = pipeline.predict_proba(frame).tolist() if classes is not None else None
        return predictions, probabilities

    if classes is None or example is None or not len(example):
        return two_passes
    labels = np.asarray(classes, dtype=object)

    def one_pass(frame: pd.DataFrame) -> tuple[list[Any], list[list[float]] | None]:
        probabilities = pipeline.predict_proba(frame)
        return labels[probabilities.argmax(axis=1)].tolist(), probabilities.tolist()

    try:
        agrees = one_pass(example)[0] == two_passes(example)[0]
    except Exception as exc:  # an odd example must not stop the model from serving
        log.warning("one-pass prediction check failed, using two passes: %s", exc)
        agrees = False
    return one_pass if agrees else two_passes


def _settle_memory() -> None:
    """Move what is loaded now out of the garbage collector's sight.

    A loaded worker tracks about half a million objects (the model, pandas, sklearn); a full
    collection over them stops every thread for about 300 ms, which is most of the tail
    latency. Frozen objects are never scanned; new garbage is collected as before.
    """
    gc.collect()
    gc.freeze()


class ModelStore:
    """Holds the current snapshot and refreshes it from the registry and the database."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._snapshot = ModelSnapshot()
        self._lock = threading.Lock()  # one refresh at a time; readers never wait
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def snapshot(self) -> ModelSnapshot:
        return self._snapshot

    def refresh(self) -> ModelSnapshot:
        """Load whatever changed (versions, split); keep the last good models on any failure."""
        with self._lock:
            current = self._snapshot
            try:
                client = registry.configure(self.settings)
                name = self.settings.model.name
                loaded = {}
                for variant in (PRODUCTION, STAGING):
                    info = registry.by_alias(client, name, variant)
                    have = current.model(variant)
                    if info is None:
                        loaded[variant] = None
                    elif have is not None and have.version == info.version:
                        loaded[variant] = have
                    else:
                        loaded[variant] = self._load(variant, info.version)
                split = load_split(self.engine, name, self.settings.serving.default_staging_weight)
                fresh = ModelSnapshot(
                    loaded[PRODUCTION], loaded[STAGING], split, True, None, datetime.now(UTC)
                )
            except Exception as exc:  # the registry or database is away: keep serving
                log.warning("model refresh failed, keeping the last good models: %s", exc)
                fresh = replace(current, registry_ok=False, error=f"registry unreachable: {exc}")
            for variant in (PRODUCTION, STAGING):
                old = current.model(variant)
                if old is not None and old is not fresh.model(variant):
                    old.batcher.close()
            self._snapshot = fresh
            if any(fresh.model(v) is not current.model(v) for v in (PRODUCTION, STAGING)):
                _settle_memory()
            return fresh

    def _load(self, variant: str, version: str) -> LoadedModel:
        import mlflow
        import mlflow.sklearn
        from mlflow.models import Model

        uri = f"models:/{self.settings.model.name}/{version}"
        with tempfile.TemporaryDirectory(prefix="driftloop-model-") as folder:
            local = mlflow.artifacts.download_artifacts(uri, dst_path=folder)
            pipeline = mlflow.sklearn.load_model(local)
            info = Model.load(local)
            signature = info.signature
            example = info.load_input_example(local)
        if signature is not None:
            columns = signature.inputs.to_dict()
            names = tuple(c["name"] for c in columns)
            numeric = frozenset(c["name"] for c in columns if c["type"] in _NUMERIC_TYPES)
        else:
            names = tuple(self.settings.feature_columns)
            numeric = frozenset(set(names) - set(self.settings.data.categorical_features))
        # recorded at training; a version registered without it: only the configured ones
        recorded = (info.metadata or {}).get(registry.NULLABLE_FEATURES) or []
        nullable = (set(recorded) | set(self.settings.data.nullable_features)) & set(names)
        schema = FeatureSchema(names, numeric, frozenset(nullable))
        classes = _classes(pipeline)
        serving = self.settings.serving
        batcher = MicroBatcher(
            predictor(pipeline, classes, example if isinstance(example, pd.DataFrame) else None),
            serving.micro_batch_max,
            serving.micro_batch_wait_ms / 1000,
            f"{variant}-v{version}",
        )
        log.info("loaded %s version %s", variant, version)
        return LoadedModel(variant, version, pipeline, schema, classes, batcher)

    def start_polling(self) -> None:
        def poll() -> None:
            while not self._stop.wait(self.settings.serving.poll_seconds):
                self.refresh()

        self._poller = threading.Thread(target=poll, name="model-poll", daemon=True)
        self._poller.start()

    def close(self) -> None:
        self._stop.set()
        for model in (self._snapshot.production, self._snapshot.staging):
            if model is not None:
                model.batcher.close()
