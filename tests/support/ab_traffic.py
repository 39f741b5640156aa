"""Simulated A/B traffic: prediction-log rows and feedback written straight to the database,
with a chosen accuracy per variant (the server's own path is tested in the serving tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.storage import Feedback, Prediction


def send(
    settings: Settings,
    engine: sa.Engine,
    variant: str,
    version: str,
    records: int,
    accuracy: float,
    seed: int,
    failed: int = 0,
    latency_ms: float = 5.0,
    start: datetime | None = None,
    assignment: str | None = "random",
    shadow: bool = False,
) -> None:
    """``records`` answered records with feedback (right with probability ``accuracy``) and
    ``failed`` failed requests, for one variant; ``assignment`` as the server logs it;
    ``shadow`` marks the records as shadow answers (logged, never returned)."""
    rng = np.random.default_rng(seed)
    start = start or _window_start(engine)
    predictions, feedback = [], []
    for i in range(records):
        record_id = f"{variant}-{version}-{seed}-{i}{'-shadow' if shadow else ''}"
        truth = int(rng.choice([5, 6, 7]))
        right = rng.random() < accuracy
        at = start + timedelta(milliseconds=i)
        predictions.append(
            _row(settings, variant, version, record_id, at, 200, latency_ms)
            | {
                "output": {"prediction": truth if right else truth + 1},
                "assignment": assignment,
                "shadow": shadow,
            }
        )
        feedback.append(
            {
                "model_name": settings.model.name,
                "record_id": record_id,
                "value": truth,
                "created_at": at,
            }
        )
    for i in range(failed):
        at = start + timedelta(milliseconds=i)
        predictions.append(
            _row(settings, variant, version, None, at, 500, latency_ms)
            | {
                "request_id": f"failed-{variant}-{seed}-{i}",
                "error": "internal error",
                "assignment": None,
            }
        )
    with engine.begin() as connection:
        connection.execute(sa.insert(Prediction), predictions)
        if feedback:
            connection.execute(sa.insert(Feedback), feedback)


_WINDOWS: dict[str, datetime] = {}


def _window_start(engine: sa.Engine) -> datetime:
    """An hour before the first send to this database, the same for every later send: the
    variants' rows share one window however long a send takes. (Each call's own clock once let
    a slow first send put every Production row before the test's start, the first Staging
    row, so a loaded machine saw no Production outcome at all.)"""
    key = engine.url.render_as_string(hide_password=False)
    return _WINDOWS.setdefault(key, datetime.now(UTC) - timedelta(hours=1))


def _row(settings, variant, version, record_id, at, status, latency_ms) -> dict:
    return {
        "request_id": record_id or "",
        "record_id": record_id,
        "model_name": settings.model.name,
        "variant": variant,
        "model_version": version,
        "shadow": False,
        "status": status,
        "inputs": {},
        "output": None,
        "error": None,
        "latency_ms": latency_ms,
        "created_at": at,
    }
