"""Served traffic for the traffic drift tests: synthetic inputs, and prediction-log rows shaped
as ``/predict`` logs them, written by the log's own writer process (``PredictionLog``) rather
than through a live server, so the tests stay fast."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

NUMERIC = [f"x{i}" for i in range(8)]
FEATURES = [*NUMERIC, "region"]
REGIONS = ["north", "south", "east", "west"]


def population(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Positive, correlated, skewed numeric features (measurements: x100 or x2 is a change of
    units), one categorical, and some values missing in x3."""
    covariance = np.full((8, 8), 0.4) + 0.6 * np.eye(8)
    values = np.exp(0.25 * rng.multivariate_normal(np.zeros(8), covariance, rows)) * np.arange(
        2, 10
    )
    frame = pd.DataFrame(values, columns=NUMERIC)
    frame["region"] = rng.choice(REGIONS, rows, p=[0.4, 0.3, 0.2, 0.1])
    frame.loc[rng.random(rows) < 0.02, "x3"] = np.nan
    return frame


def skewed(frame: pd.DataFrame, share: float, feature: str, factor: float, rng) -> pd.Series:
    """Which records one client sends (``share`` of them, at random), with ``feature``
    multiplied by ``factor`` in place; returns the client's mask."""
    client = pd.Series(rng.random(len(frame)) < share, index=frame.index)
    frame.loc[client, feature] = frame.loc[client, feature] * factor
    return client


def served_rows(
    model: str,
    frame: pd.DataFrame,
    start: datetime,
    span: timedelta,
    variant: str = "production",
    version: str = "1",
    shadow: bool = False,
    assignment: str = "random",
    client: pd.Series | None = None,
) -> list[dict[str, Any]]:
    """One log row per record of ``frame``, one request per record, spread evenly over
    ``span`` from ``start``: the keys and values ``serving.prediction`` logs (a client's
    records, per ``client``, are sticky and carry its hashed key)."""
    step = span / max(len(frame), 1)
    rows = []
    for i, record in enumerate(frame.to_dict("records")):
        request = f"{'shadow-' if shadow else ''}{model}-{start:%H%M%S}-{i}"
        sticky = client is not None and bool(client.iloc[i])
        inputs = {
            k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()
        }
        rows.append(
            {
                "request_id": request,
                "record_id": f"{request}-0",
                "model_name": model,
                "variant": variant,
                "model_version": version,
                "shadow": shadow,
                "status": 200,
                "latency_ms": 4.0,
                "assignment": "sticky" if sticky else assignment,
                "split_version": 1,
                "client_key": "c0ffee" if sticky else None,
                "missing": [k for k, v in inputs.items() if v is None] or None,
                "inputs": inputs,
                "output": {"prediction": 1, "probabilities": [0.4, 0.6]},
                "created_at": start + i * step,
            }
        )
    return rows


def write_log(engine: sa.Engine, rows: list[dict[str, Any]], per_request: int = 500) -> None:
    """Hand ``rows`` to the prediction log's writer process as the server does (a few records
    per write) and wait until it has inserted them all. Each row's ``created_at`` is the
    time it was served, as the writer stamps it when the server hands it over."""
    from serving.prediction_log import PredictionLog

    log = PredictionLog(engine, batch_size=5_000, flush_seconds=0.05)
    try:
        for first in range(0, len(rows), per_request):
            log.write(rows[first : first + per_request])
    finally:
        log.close()
    assert log.written == len(rows), f"the writer inserted {log.written} of {len(rows)} rows"
