"""The models a server answers with: Production and Staging, loaded by alias from the registry.

A snapshot (both models, their feature schema and the traffic split) is immutable and replaced
whole, so a request sees either the old pair or the new one, never a mix. A background poll
(and the admin reload) loads new versions beside the old ones before swapping. When the
registry cannot be reached, the last good snapshot keeps serving and ``/ready`` says so.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.ab.traffic import PRODUCTION, STAGING, TrafficSplit, load_split
from driftloop.config import Settings
from driftloop.scoring import model as scoring
from driftloop.scoring.model import FeatureSchema
from serving.batching import Batchable, MicroBatcher

log = logging.getLogger(__name__)

# MLflow's tracking URI is one per process (``registry.configure`` sets it), and models of one
# server may each have their own store (the embedded default): one model's registry look-ups
# and downloads at a time, so none reads another's store
MLFLOW_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    """One registered version, ready to predict single-threaded through a micro-batcher."""

    variant: str
    version: str
    pipeline: Any
    schema: FeatureSchema
    classes: list[Any] | None
    batcher: MicroBatcher = field(repr=False)
    # the logged input example (training rows): /explain's background for linear models and
    # the permutation fallback (tree explanations need none)
    example: pd.DataFrame | None = field(default=None, repr=False)

    def predict(self, frame: Batchable) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions (and class probabilities for classifiers) for every row of ``frame`` (a
        frame, or all-numeric records as :class:`~serving.batching.Rows`)."""
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


def predictor(pipeline: Any, classes: list[Any] | None, example: pd.DataFrame | None = None):
    """The version's predict function (:func:`driftloop.scoring.model.predictor`: one
    ``predict_proba`` pass when it agrees with ``predict``), answering in the plain Python
    values a JSON response carries, for the micro-batcher."""
    predict = scoring.predictor(pipeline, classes, example)

    def answer(frame: pd.DataFrame) -> tuple[list[Any], list[list[float]] | None]:
        return scoring.as_lists(predict(frame))

    answer.__name__ = predict.__name__  # which of the two ways it predicts, for the logs
    return answer


def settle_memory(released: bool = False) -> None:
    """Move what is loaded now out of the garbage collector's sight.

    A loaded worker tracks about half a million objects (the model, pandas, sklearn); a full
    collection over them stops every thread for about 300 ms, which is most of the tail
    latency. Frozen objects are never scanned; new garbage is collected as before.

    ``released``: a model was let go (swapped out or unloaded). Its arrays go with their last
    reference (a fitted pipeline holds no reference cycle; a batcher's thread drops its own
    when it stops), and the C allocator is asked to hand its free pages back to the system
    (``malloc_trim``, glibc only). Frozen objects are not unfrozen for it: a full collection
    over a loaded worker took 0.2 to 2.6 s here, and RSS stays flat over 1,000 loads and
    unloads without one (``tests/serving/test_model_memory.py``).
    """
    gc.collect()
    gc.freeze()
    if released:
        _trim_malloc()


def _trim_malloc() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the allocator keeps its pages
        pass


class ModelStore:
    """Holds the current snapshot and refreshes it from the registry and the database."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._snapshot = ModelSnapshot()
        self._lock = threading.Lock()  # one refresh at a time; readers never wait
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._failed_polls = 0  # in a row: an outage is logged once, not once per poll

    @property
    def snapshot(self) -> ModelSnapshot:
        return self._snapshot

    def refresh(self) -> ModelSnapshot:
        """Load whatever changed (versions, split); keep the last good models on any failure."""
        with self._lock:
            current = self._snapshot
            if self._stop.is_set():  # closed (unloaded): load nothing more
                return current
            try:
                name = self.settings.model.name
                loaded = {}
                with MLFLOW_LOCK:
                    client = registry.configure(self.settings)
                    for variant in (PRODUCTION, STAGING):
                        info = registry.by_alias(client, name, variant)
                        have = current.model(variant)
                        if info is None:
                            loaded[variant] = None
                        elif have is not None and have.version == info.version:
                            loaded[variant] = have
                        else:
                            loaded[variant] = self._load(variant, info.version)
                split = load_split(
                    self.engine,
                    name,
                    self.settings.serving.default_staging_weight,
                    self.settings.serving.default_shadow,
                )
                fresh = ModelSnapshot(
                    loaded[PRODUCTION], loaded[STAGING], split, True, None, datetime.now(UTC)
                )
            except Exception as exc:  # the registry or database is away: keep serving
                self._failed_polls += 1
                if self._failed_polls == 1:
                    log.warning(
                        "model refresh failed, keeping the last good models and retrying "
                        "every %g s: %s",
                        self.settings.serving.poll_seconds,
                        exc,
                    )
                else:
                    log.debug("model refresh failed again (%d in a row)", self._failed_polls)
                fresh = replace(current, registry_ok=False, error=f"registry unreachable: {exc}")
            else:
                if self._failed_polls:
                    log.warning(
                        "model refresh works again after %d failed polls", self._failed_polls
                    )
                self._failed_polls = 0
            changed = any(fresh.model(v) is not current.model(v) for v in (PRODUCTION, STAGING))
            released = False
            for variant in (PRODUCTION, STAGING):
                old = current.model(variant)
                if old is not None and old is not fresh.model(variant):
                    old.batcher.close()
                    released = True
            self._snapshot = fresh
            del current, old  # the swapped-out models' last references here
            if changed:
                settle_memory(released)
            return fresh

    def _load(self, variant: str, version: str) -> LoadedModel:
        loaded = scoring.load_version(self.settings, version)
        serving = self.settings.serving
        batcher = MicroBatcher(
            predictor(loaded.pipeline, loaded.classes, loaded.example),
            serving.micro_batch_max,
            serving.micro_batch_wait_ms / 1000,
            f"{variant}-v{version}",
        )
        log.info("loaded %s version %s", variant, version)
        return LoadedModel(
            variant,
            version,
            loaded.pipeline,
            loaded.schema,
            loaded.classes,
            batcher,
            loaded.example,
        )

    def start_polling(self) -> None:
        def poll() -> None:
            while not self._stop.wait(self.settings.serving.poll_seconds):
                self.refresh()

        self._poller = threading.Thread(target=poll, name="model-poll", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop polling and the models' batcher threads; a refresh under way finishes first
        (then loads nothing more), so no thread outlives the store. The snapshot stays: a
        request that took this store before it was unloaded still gets its answer (a closed
        batcher predicts alone), and the models go with the store's last reference."""
        self._stop.set()
        with self._lock:
            for model in (self._snapshot.production, self._snapshot.staging):
                if model is not None:
                    model.batcher.close()
