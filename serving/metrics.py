"""Prometheus metrics of the server. Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (the
gunicorn config does) so ``/metrics`` adds up every worker, not just the one that answers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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

REQUESTS = Counter("driftloop_requests_total", "HTTP requests answered", ["endpoint", "status"])
PREDICTIONS = Counter(
    "driftloop_predictions_total", "Records predicted", ["variant", "version", "shadow"]
)
LATENCY = Histogram(
    "driftloop_predict_latency_seconds",
    "Time to answer /predict",
    ["variant"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FEEDBACK = Counter("driftloop_feedback_total", "Feedback received", ["outcome"])
MISSING = Counter(
    "driftloop_missing_values_total",
    "Missing feature values (null or absent) in predicted records, per feature",
    ["feature"],
)
ERRORS = Counter(
    "driftloop_prediction_errors_total",
    "Refused or failed /predict requests after routing, per variant",
    ["variant", "status"],
)

LOG_ROWS = Counter(
    "driftloop_prediction_log_rows_total",
    "Prediction-log rows by outcome: inserted; spilled (the database refused writes: kept in "
    "files for `driftloop db replay-spill`); refused (content the database refuses); lost "
    "(neither the database nor the disk took them)",
    ["outcome"],
)


def count_missing(names: Any, missing: Any) -> None:
    """Add a request's missing values (a records x features bool array, or None) per feature."""
    if missing is None:
        return
    for name, count in zip(names, missing.sum(axis=0).tolist(), strict=True):
        if count:
            MISSING.labels(str(name)).inc(count)


class LoopCollector:
    """The loop's state (drift, retrain, A/B, Production's health, loaded versions) read at
    scrape time from the database and the server's model store, identical in every worker."""

    def __init__(self, engine: Any, model_name: str, snapshot: Callable[[], Any]) -> None:
        self.engine, self.model_name, self.snapshot = engine, model_name, snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from driftloop.ui.gauges import loop_gauges

        try:
            gauges = loop_gauges(self.engine, self.model_name)
        except Exception:  # a scrape must not fail because the database blinked
            gauges = []
        for gauge in gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=list(gauge.labels))
            for labels, value in gauge.samples:
                family.add_metric(list(labels), value)
            yield family
        versions = GaugeMetricFamily(
            "driftloop_model_version_info",
            "The registered version this server answers with, per role",
            labels=["role", "version"],
        )
        snapshot = self.snapshot()
        for role in Role:
            model = snapshot.model(role)
            if model is not None:
                versions.add_metric([role, model.version], 1.0)
        yield versions


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
