"""The prediction itself, as plain functions of the loaded models and a parsed request body: no
Flask here, so it is tested and measured without a server (the way MLflow's scoring server
keeps ``_predict`` and ``predictions_to_json`` apart from its routes).

:func:`route` picks the variant that answers; :func:`predict` checks the records against that
version's signature, predicts them (and, in shadow mode, lets Staging predict them too) and
returns a :class:`Prediction`: the response body and the prediction-log rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.ab.traffic import PRODUCTION, VARIANTS, client_hash
from driftloop.config import Settings
from driftloop.storage import FORCED, RANDOM, STICKY
from serving.models import LoadedModel, ModelSnapshot
from serving.schemas import Answer, PredictRequest, PredictResponse
from serving.validation import RequestError, checked_records

log = logging.getLogger(__name__)

CLIENT_KEY_HEADER, FORCE_VARIANT_HEADER = "X-Client-Key", "X-Variant"


@dataclass(frozen=True)
class Route:
    """The version that answers a request, how it was assigned (random, sticky, forced), and
    the version of the traffic split it was routed by (logged with each row)."""

    model: LoadedModel
    assignment: str
    split_version: int
    client: str | None = None  # a sticky request's client key, hashed (ab.traffic.client_hash)


def route(
    snapshot: ModelSnapshot,
    body: PredictRequest,
    headers: Mapping[str, str],
    settings: Settings,
) -> Route:
    """``X-Variant`` forces a variant; otherwise a sticky key (``X-Client-Key``, the body's
    ``client_id``, or a one-record request's sticky field) keeps a client on one variant, and
    a request without one is split at random."""
    if snapshot.production is None:
        raise RequestError(
            503,
            f"no Production version of {settings.model.name} is loaded: "
            f"{snapshot.error or 'run driftloop bootstrap'}",
        )
    forced = headers.get(FORCE_VARIANT_HEADER)
    if forced:
        if forced not in VARIANTS:
            raise RequestError(
                400, f"{FORCE_VARIANT_HEADER} must be one of {list(VARIANTS)}, got {forced!r}"
            )
        model = snapshot.model(forced)
        if model is None:
            raise RequestError(409, f"there is no {forced} version to force")
        return Route(model, FORCED, snapshot.split.version)
    key = headers.get(CLIENT_KEY_HEADER) or body.client_id
    if key is None and len(body.items) == 1:
        value = body.items[0].get(settings.serving.sticky_field)
        key = None if value is None else str(value)
    how, client = (RANDOM, None) if key is None else (STICKY, client_hash(key))
    if snapshot.staging is None:
        return Route(snapshot.production, how, snapshot.split.version, client)
    chosen = snapshot.model(snapshot.split.variant_for(key))
    return Route(chosen, how, snapshot.split.version, client)


@dataclass(frozen=True)
class Prediction:
    """One answered request: what the client gets and what the prediction log keeps."""

    request_id: str
    model_name: str
    model: LoadedModel
    record_ids: list[str]
    predictions: list[Any]
    probabilities: list[list[float]] | None
    missing: np.ndarray | None  # bool, records x the signature's features; None: none missing
    log_rows: list[dict[str, Any]]

    def response(self) -> PredictResponse:
        """The body ``/predict`` returns: per record its id, prediction and (classifiers) the
        probability of each class."""
        model = self.model
        # dict literals, not Answer(...) calls: a thousand class calls cost a tenth of a ms
        answers: list[Answer]
        if self.probabilities is not None and model.classes is not None:
            names = [str(c) for c in model.classes]
            answers = [
                {
                    "record_id": record_id,
                    "prediction": prediction,
                    "probabilities": dict(zip(names, row, strict=True)),
                }
                for record_id, prediction, row in zip(
                    self.record_ids, self.predictions, self.probabilities, strict=True
                )
            ]
        else:
            answers = [
                {"record_id": record_id, "prediction": prediction}
                for record_id, prediction in zip(self.record_ids, self.predictions, strict=True)
            ]
        return {
            "request_id": self.request_id,
            "model": self.model_name,
            "version": model.version,
            "variant": model.variant,  # type: ignore[typeddict-item]
            "predictions": answers,
        }


def predict(
    snapshot: ModelSnapshot,
    chosen: Route,
    items: list[dict[str, Any]],
    settings: Settings,
    request_id: str,
    started: float,
) -> Prediction:
    """Check ``items`` against the chosen version's signature and predict them; ``started``
    (``time.perf_counter()``) is when the request arrived, for the logged latency."""
    serving, model = settings.serving, chosen.model
    checked = checked_records(
        items,
        model.schema,
        serving.max_records,
        {serving.sticky_field},
        serving.max_missing_share,
    )
    batch = checked.rows  # all-numeric records: an array, stacked by the micro-batcher
    predictions, probabilities = model.predict(batch)
    # unique because the request id is; and a record's id names the request it came in
    record_ids = [f"{request_id}-{i}" for i in range(len(items))]
    elapsed = (time.perf_counter() - started) * 1000
    logged = _Logged(
        settings,
        request_id,
        record_ids,
        items,
        checked.missing_names(),
        elapsed,
        chosen.split_version,
        chosen.client,
    )
    rows = logged.rows(model, predictions, probabilities, False, chosen.assignment)
    if snapshot.split.shadow and model.variant == PRODUCTION and snapshot.staging is not None:
        rows += _shadow_rows(snapshot.staging, batch, logged, chosen.assignment)
    return Prediction(
        request_id,
        settings.model.name,
        model,
        record_ids,
        predictions,
        probabilities,
        checked.missing,
        rows,
    )


@dataclass(frozen=True)
class _Logged:
    """What every log row of one request shares."""

    settings: Settings
    request_id: str
    record_ids: list[str]
    items: list[dict[str, Any]]
    missing: list[list[str] | None]
    elapsed_ms: float
    split_version: int  # the traffic split this replica routed by
    client: str | None  # the hashed client key of a sticky request

    def rows(
        self,
        model: LoadedModel,
        predictions: list[Any],
        probabilities: list[list[float]] | None,
        shadow: bool,
        assignment: str,
        latency_ms: float | None = None,
    ) -> list[dict[str, Any]]:
        """One log row per answered record; a shadow row carries Staging's own prediction
        time (``latency_ms``), which the paired A/B test's latency guardrail reads."""
        sticky = self.settings.serving.sticky_field
        common = {
            "request_id": self.request_id,
            "model_name": self.settings.model.name,
            "variant": model.variant,
            "model_version": model.version,
            "shadow": shadow,
            "status": 200,
            "latency_ms": self.elapsed_ms if latency_ms is None else latency_ms,
            "assignment": assignment,
            "split_version": self.split_version,
            "client_key": self.client,
        }
        return [
            {
                **common,
                "record_id": record_id,
                "missing": self.missing[i],
                # the sticky key routes the request; it is not a model input
                "inputs": {k: v for k, v in item.items() if k != sticky}
                if sticky in item
                else item,
                "output": (
                    {"prediction": prediction}
                    if probabilities is None
                    else {"prediction": prediction, "probabilities": probabilities[i]}
                ),
            }
            for i, (record_id, item, prediction) in enumerate(
                zip(self.record_ids, self.items, predictions, strict=True)
            )
        ]


def _shadow_rows(
    staging: LoadedModel, frame: Any, logged: _Logged, assignment: str
) -> list[dict[str, Any]]:
    """Staging's unreturned answers; its failure is logged, never the client's problem."""
    started = time.perf_counter()
    try:
        predictions, probabilities = staging.predict(frame)
    except Exception as exc:
        log.exception("shadow prediction failed")
        return [
            {
                "request_id": logged.request_id,
                "model_name": logged.settings.model.name,
                "variant": staging.variant,
                "model_version": staging.version,
                "shadow": True,
                "status": 500,
                "split_version": logged.split_version,
                "client_key": logged.client,
                "error": f"shadow prediction failed: {type(exc).__name__}: {exc}",
            }
        ]
    elapsed = (time.perf_counter() - started) * 1000
    return logged.rows(staging, predictions, probabilities, True, assignment, elapsed)
