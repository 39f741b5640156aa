"""Prometheus metrics of the server. Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (the
gunicorn config does) so ``/metrics`` adds up every worker, not just the one that answers."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

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


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's metrics in multiprocess mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
