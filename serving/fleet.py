"""Many models in one server: every declared model's own store, loaded on its first request
and kept in an LRU cache per worker.

A server built for one model (``create_app(settings)``) holds it loaded from the start, exactly
as before. Built for several (``create_app(load_all())``), it loads none at start: a model's
:class:`~serving.models.ModelStore` (its Production and Staging, its traffic split, its poll of
the registry) is made on the first request that names the model, and the least recently used
one is unloaded when more than ``serving.max_loaded_models`` are resident, or when their summed
footprint passes ``serving.max_loaded_memory_mb``. An unloaded store stops its poll and batcher
threads and drops its references; the memory goes back with one full collection
(``serving.models.settle_memory``). Each store polls its own model only, so a promotion of
one model swaps that model's versions and touches no other.

Models that share a database share its engine and one prediction-log writer process; each row
names its model. Loads are serialized per worker (one lock): a model's footprint is the growth
of the worker's RSS while it loads, which a concurrent load would blur, and loading is mostly
CPU under the GIL anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil
import sqlalchemy as sa

from driftloop.config import Settings
from serving import metrics
from serving.models import ModelStore, settle_memory
from serving.prediction_log import PredictionLog
from serving.validation import RequestError

log = logging.getLogger(__name__)

# what a server for many models reads from the first declared model only: the keys of the
# whole server, not of a model (a file sets them in its project sections)
SERVER_KEYS = ("max_body_bytes", "require_api_key", "max_loaded_models", "max_loaded_memory_mb")
MB = 1024 * 1024


@dataclass(frozen=True)
class ServedModel:
    """One declared model as a request sees it: its settings, database and prediction log,
    and its store (loaded for this request, and kept while it is recently used)."""

    name: str
    settings: Settings
    engine: sa.Engine
    log: PredictionLog
    store: ModelStore


def rss_bytes() -> int:
    """This process's resident memory now."""
    return psutil.Process().memory_info().rss


class ModelFleet:
    """The declared models of one server worker, loaded on demand, least recently used
    unloaded first."""

    def __init__(
        self,
        models: Mapping[str, Settings],
        *,
        open_engine: Callable[[Settings], sa.Engine],
        open_log: Callable[[sa.Engine, Settings], PredictionLog],
        background: bool = True,
        store_factory: Callable[[Settings, sa.Engine], ModelStore] = ModelStore,
    ) -> None:
        if not models:
            raise ValueError("a server needs at least one model")
        self.models = dict(models)
        self.server = check_server_keys(self.models)
        self.background = background
        self._open_log, self._factory = open_log, store_factory
        # per database URL: every engine at start (a database behind its migrations stops the
        # server now, not its first request); a prediction-log writer process on first use
        self._engines: dict[str, sa.Engine] = {}
        for settings in self.models.values():
            if settings.database_url not in self._engines:
                self._engines[settings.database_url] = open_engine(settings)
        self._logs: dict[str, PredictionLog] = {}  # per database URL
        self._resident: OrderedDict[str, ModelStore] = OrderedDict()  # least recent first
        self._footprint: dict[str, int] = {}  # bytes of RSS each resident model added
        self._weight: dict[str, int] = {}  # the most any load of a model added, kept
        self._lock = threading.Lock()  # the maps above; never held while loading
        self._loading = threading.Lock()  # one load at a time
        self._opening = threading.Lock()  # one database (engine, log writer) opened at a time
        self._closed = False
        self.loads = self.evictions = 0

    @property
    def names(self) -> list[str]:
        return list(self.models)

    @property
    def single(self) -> bool:
        return len(self.models) == 1

    def settings(self, name: str) -> Settings:
        """A declared model's settings; 404 with a sentence for any other name."""
        try:
            return self.models[name]
        except KeyError:
            raise RequestError(404, unknown_model(name, self.names)) from None

    def resident(self) -> list[str]:
        """The loaded models, least recently used first."""
        with self._lock:
            return list(self._resident)

    def peek(self, name: str) -> ModelStore | None:
        """The model's store if it is loaded, without loading it or touching its recency."""
        with self._lock:
            return self._resident.get(name)

    def footprint_mb(self) -> dict[str, float]:
        with self._lock:
            return {name: size / MB for name, size in self._footprint.items()}

    def get(self, name: str) -> ServedModel:
        """The model ``name`` ready to answer, loading it first when it is not resident."""
        settings = self.settings(name)
        engine, prediction_log = self._database(settings)
        return ServedModel(name, settings, engine, prediction_log, self._store(name, settings))

    def _store(self, name: str, settings: Settings) -> ModelStore:
        with self._lock:
            store = self._resident.get(name)
            if store is not None:
                self._resident.move_to_end(name)
                return store
        with self._loading:
            with self._lock:
                store = self._resident.get(name)
                if store is not None:  # loaded by the request we waited for
                    self._resident.move_to_end(name)
                    return store
                if self._closed:
                    raise RequestError(503, "the server is shutting down")
            before = rss_bytes()
            store = self._factory(settings, self._database(settings)[0])
            store.refresh()
            if self.background:
                store.start_polling()
            # a reload reuses the pages its last unload freed and barely grows RSS: a model
            # weighs the most any of its loads in this worker grew it (at least a byte)
            footprint = max(rss_bytes() - before, self._weight.get(name, 1))
            self._weight[name] = footprint
            with self._lock:
                self._resident[name] = store
                self._footprint[name] = footprint
                self.loads += 1
                evicted = self._over_limits()
            metrics.LOADS.labels(name).inc()
            for gone, _ in evicted:
                metrics.EVICTIONS.labels(gone).inc()
            log.info("loaded model %s (%.1f MB)", name, footprint / MB)
        if evicted:
            self._unload(evicted)
        return store

    def _over_limits(self) -> list[tuple[str, ModelStore]]:
        """Take the least recently used models out while there are too many or they weigh too
        much; the newest stays whatever it weighs. Called under ``_lock``."""
        serving = self.server.serving
        budget = None if serving.max_loaded_memory_mb is None else serving.max_loaded_memory_mb * MB
        evicted = []
        while len(self._resident) > 1 and (
            len(self._resident) > serving.max_loaded_models
            or (budget is not None and sum(self._footprint.values()) > budget)
        ):
            name, store = self._resident.popitem(last=False)
            self._footprint.pop(name, None)
            evicted.append((name, store))
        self.evictions += len(evicted)
        return evicted

    def evict(self, name: str) -> bool:
        """Unload ``name`` now (it loads again on its next request); False if not loaded."""
        with self._lock:
            store = self._resident.pop(name, None)
            self._footprint.pop(name, None)
            if store is not None:
                self.evictions += 1
        if store is None:
            return False
        metrics.EVICTIONS.labels(name).inc()
        self._unload([(name, store)], wait=True)
        return True

    def _unload(self, evicted: list[tuple[str, ModelStore]], wait: bool = False) -> None:
        """Close the stores and give their memory back, off the request's thread: closing waits
        for a refresh under way. Requests that hold one of them still get their answers (a
        closed batcher predicts alone)."""

        def unload() -> None:
            for name, store in evicted:
                store.close()
                log.info("unloaded model %s", name)
            evicted.clear()  # the stores' last references
            settle_memory(released=True)

        if wait:
            unload()
        else:
            threading.Thread(target=unload, name="model-unload", daemon=True).start()

    def _database(self, settings: Settings) -> tuple[sa.Engine, PredictionLog]:
        """The engine and prediction log of the model's database, opened once per database."""
        url = settings.database_url
        opened = self._logs.get(url)  # every request after the first: no lock
        if opened is not None:
            return self._engines[url], opened
        with self._opening:
            if url not in self._logs:
                if self._closed:
                    raise RequestError(503, "the server is shutting down")
                self._logs[url] = self._open_log(self._engines[url], settings)
            return self._engines[url], self._logs[url]

    def close(self) -> None:
        """Unload every model and drain every prediction log (gunicorn's ``worker_exit``)."""
        with self._opening, self._lock:
            self._closed = True
            stores = list(self._resident.values())
            self._resident.clear()
            logs = list(self._logs.values())
        for store in stores:
            store.close()
        for prediction_log in logs:
            prediction_log.close()

    def open_log_of(self, name: str) -> PredictionLog | None:
        """The prediction log of a declared model's database, if it is open (nothing opens)."""
        settings = self.models.get(name)
        return None if settings is None else self._logs.get(settings.database_url)

    def engine(self, name: str) -> sa.Engine:
        """A declared model's database, whether or not the model is loaded."""
        return self._engines[self.settings(name).database_url]


def check_server_keys(models: Mapping[str, Settings]) -> Settings:
    """The settings the whole server follows (the first model's), refused when models
    disagree on a key that belongs to the server, not to a model."""
    first, *others = models.items()
    for key in SERVER_KEYS:
        mine = getattr(first[1].serving, key)
        differ = [name for name, s in others if getattr(s.serving, key) != mine]
        if differ:
            raise ValueError(
                f"serving.{key} belongs to the whole server, but models {', '.join(differ)} set "
                f"it apart from {first[0]} ({mine!r}): set it once, in the project's sections"
            )
    return first[1]


def unknown_model(name: str, names: list[str]) -> str:
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"there is no model {name!r} on this server; it serves {shown}"
