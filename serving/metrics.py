"""Prometheus metrics of the server. Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (the
gunicorn config does) so ``/metrics`` adds up every worker, not just the one that answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from driftloop.vocabulary import Role

# every series of a request names its model: the one in the path, or a one-model server's
# model; "" for a request that is for no model (/health, /metrics, an unknown name)
REQUESTS = Counter(
    "driftloop_requests_total", "HTTP requests answered", ["model", "endpoint", "status"]
)
PREDICTIONS = Counter(
    "driftloop_predictions_total", "Records predicted", ["model", "variant", "version", "shadow"]
)
LATENCY = Histogram(
    "driftloop_predict_latency_seconds",
    "Time to answer /predict",
    ["model", "variant"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FEEDBACK = Counter("driftloop_feedback_total", "Feedback received", ["model", "outcome"])
MISSING = Counter(
    "driftloop_missing_values_total",
    "Missing feature values (null or absent) in predicted records, per feature",
    ["model", "feature"],
)
ERRORS = Counter(
    "driftloop_prediction_errors_total",
    "Refused or failed /predict requests after routing, per variant",
    ["model", "variant", "status"],
)
LOADS = Counter(
    "driftloop_model_loads_total",
    "Models loaded into a worker (first request, or after eviction)",
    ["model"],
)
EVICTIONS = Counter(
    "driftloop_model_evictions_total",
    "Models unloaded from a worker: the least recently used beyond serving.max_loaded_models "
    "or serving.max_loaded_memory_mb",
    ["model"],
)

LOG_ROWS = Counter(
    "driftloop_prediction_log_rows_total",
    "Prediction-log rows by outcome: inserted; spilled (the database refused writes: kept in "
    "files for `driftloop db replay-spill`); refused (content the database refuses); lost "
    "(neither the database nor the disk took them)",
    ["outcome"],
)


def count_missing(model: str, names: Any, missing: Any) -> None:
    """Add a request's missing values (a records x features bool array, or None) per feature."""
    if missing is None:
        return
    for name, count in zip(names, missing.sum(axis=0).tolist(), strict=True):
        if count:
            MISSING.labels(model, str(name)).inc(count)


class LoopCollector:
    """The loop's state of every model (drift, retrain, A/B, Production's health, loaded
    versions) read at scrape time from the database and the server's model stores, identical
    in every worker (the versions: of the models loaded in the worker that answers). Every
    series carries a ``model`` label. A scrape reads each declared model's rows: with many
    models, scrape less often."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from driftloop.ui.gauges import loop_gauges

        families: dict[str, GaugeMetricFamily] = {}
        for name in self.fleet.names:
            try:
                gauges = loop_gauges(self.fleet.engine(name), name)
            except Exception:  # a scrape must not fail because the database blinked
                gauges = []
            for gauge in gauges:
                family = families.get(gauge.name)
                if family is None:
                    family = families[gauge.name] = GaugeMetricFamily(
                        gauge.name, gauge.documentation, labels=["model", *gauge.labels]
                    )
                for labels, value in gauge.samples:
                    family.add_metric([name, *labels], value)
        yield from families.values()
        versions = GaugeMetricFamily(
            "driftloop_model_version_info",
            "The registered version this server answers with, per model and role",
            labels=["model", "role", "version"],
        )
        resident = GaugeMetricFamily(
            "driftloop_model_loaded",
            "1 for a model loaded in the worker that answers the scrape, else 0",
            labels=["model"],
        )
        footprint = GaugeMetricFamily(
            "driftloop_model_memory_bytes",
            "Growth of the worker's RSS while the model loaded (its footprint estimate)",
            labels=["model"],
        )
        sizes = self.fleet.footprint_mb()
        for name in self.fleet.names:
            store = self.fleet.peek(name)
            resident.add_metric([name], float(store is not None))
            if store is None:
                continue
            if name in sizes:
                footprint.add_metric([name], sizes[name] * 1024 * 1024)
            snapshot = store.snapshot
            for role in Role:
                model = snapshot.model(role)
                if model is not None:
                    versions.add_metric([name, role, model.version], 1.0)
        yield versions
        yield resident
        yield footprint


def render(loop: LoopCollector | None = None) -> tuple[bytes, str]:
    """The exposition text: every worker's metrics in multiprocess mode (else this process's),
    plus the loop's state when a collector is given."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest()
    if loop is not None:
        extra = CollectorRegistry()
        extra.register(loop)
        text += generate_latest(extra)
    return text, CONTENT_TYPE_LATEST
