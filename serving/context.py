"""What every route reads: the server's shared objects, and the request's JSON body as a
pydantic model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from flask import current_app, request
from pydantic import BaseModel
from typing_extensions import TypedDict

from driftloop.config import Settings
from serving import json_codec
from serving.schemas import parse
from serving.validation import RequestError

if TYPE_CHECKING:
    from serving.auth import Secrets
    from serving.metrics import LoopCollector
    from serving.models import ModelStore
    from serving.prediction_log import PredictionLog

M = TypeVar("M", bound=BaseModel)


class Served(TypedDict):
    """``app.extensions["driftloop"]``: built once by ``create_app``, shared by every request.
    ``shutdown`` stops the model threads and drains the prediction log (gunicorn's
    ``worker_exit`` and the tests call it)."""

    settings: Settings
    engine: sa.Engine
    store: ModelStore
    log: PredictionLog
    secrets: Secrets
    loop_metrics: LoopCollector
    shutdown: Callable[[], None]


def served() -> Served:
    return current_app.extensions["driftloop"]


def read_body(model: type[M]) -> M:
    """The request's JSON body validated against ``model``: 415 when it is not declared JSON,
    400 when it is not JSON, 422 naming each problem when it does not fit."""
    if not request.is_json:
        raise RequestError(415, "send the body as JSON with Content-Type: application/json")
    try:
        body = json_codec.loads(request.get_data(cache=False))
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    return parse(model, body)
