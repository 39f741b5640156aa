"""Unloaded models give their memory back (issue 30, item 4): a worker's RSS after 1,000 loads
and unloads is within 5% of its RSS after 100.

The fleet's own path, without the registry: each load unpickles a small fitted forest into a
store with its micro-batcher thread, answers one request, and the least recently used model
is unloaded (its store closed, its references dropped, ``settle_memory``). A registry
download per load would make this a minute's test and measure MLflow, not the cache.
"""

from __future__ import annotations

import pickle
import threading
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from driftloop.ab.traffic import TrafficSplit
from driftloop.scoring.model import FeatureSchema
from driftloop.stack.processes import wait_until
from serving.batching import MicroBatcher
from serving.fleet import ModelFleet, rss_bytes
from serving.models import LoadedModel, ModelSnapshot, ModelStore, predictor, settle_memory

FEATURES = ("a", "b", "c", "d")


def _forest() -> bytes:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(400, len(FEATURES))), columns=list(FEATURES))
    labels = (frame["a"] + rng.normal(size=400) > 0).astype(int)
    return pickle.dumps(RandomForestClassifier(n_estimators=20, random_state=0).fit(frame, labels))


class PickledStore(ModelStore):
    """A store whose refresh "loads" Production from bytes in memory."""

    blob = b""

    def refresh(self) -> ModelSnapshot:
        with self._lock:
            if self._stop.is_set():
                return self._snapshot
            pipeline = pickle.loads(self.blob)
            classes = [int(c) for c in pipeline.classes_]
            batcher = MicroBatcher(predictor(pipeline, classes), 64, 0.0005, "memory")
            schema = FeatureSchema(FEATURES, frozenset(FEATURES))
            loaded = LoadedModel("production", "1", pipeline, schema, classes, batcher)
            self._snapshot = ModelSnapshot(
                loaded, None, TrafficSplit(), True, None, datetime.now(UTC)
            )
            settle_memory()
            return self._snapshot


def _settled() -> None:
    """Every unload done (they run off the request's thread)."""
    for thread in threading.enumerate():
        if thread.name == "model-unload":
            thread.join(10)


def test_rss_after_1000_loads_and_unloads_is_within_5_percent_of_after_100(settings):
    PickledStore.blob = _forest()
    models = {
        f"m{i}": settings.model_copy(
            update={
                "model": settings.model.model_copy(update={"name": f"m{i}"}),
                "serving": settings.serving.model_copy(update={"max_loaded_models": 2}),
            }
        )
        for i in range(3)
    }
    fleet = ModelFleet(
        models,
        open_engine=lambda _settings: None,  # type: ignore[arg-type,return-value]
        open_log=lambda _engine, _settings: SimpleNamespace(close=lambda: None),  # type: ignore[arg-type,return-value]
        background=False,
        store_factory=PickledStore,
    )
    frame = pd.DataFrame([[0.1, 0.2, 0.3, 0.4]], columns=list(FEATURES))
    measured = {}
    try:
        for cycle in range(1, 1001):
            # three models through a cache of two: every request loads one and unloads one
            store = fleet.get(f"m{cycle % 3}").store
            predictions, _ = store.snapshot.production.predict(frame)
            assert predictions in ([0], [1])
            if cycle in (100, 1000):
                _settled()
                settle_memory(released=True)
                measured[cycle] = rss_bytes()
        assert fleet.loads == 1000 and fleet.evictions == 998
        assert len(fleet.resident()) == 2
        # the unloaded models' batcher threads stopped: only the two loaded ones run
        wait_until(
            lambda: sum(t.name == "batcher-memory" for t in threading.enumerate()) == 2 or None,
            10,
            "the unloaded models' batcher threads to stop",
        )
    finally:
        fleet.close()
    mb = {cycle: round(rss / 2**20, 1) for cycle, rss in measured.items()}
    print(f"RSS in MB after 100 and 1000 cycles: {mb}")
    # not vacuous: keeping each unloaded forest would grow RSS by far more than 5%
    assert len(PickledStore.blob) * 900 > 0.05 * measured[100]
    assert measured[1000] <= measured[100] * 1.05, mb
