"""What every route reads: the server's shared objects, the model a request is for, and the
request's JSON body as a pydantic model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NotRequired, TypeVar

import sqlalchemy as sa
from flask import current_app, g, request
from pydantic import BaseModel
from typing_extensions import TypedDict

from driftloop.config import Settings
from serving import json_codec
from serving.schemas import parse
from serving.validation import RequestError

if TYPE_CHECKING:
    from serving.auth import Secrets
    from serving.fleet import ModelFleet, ServedModel
    from serving.metrics import LoopCollector
    from serving.models import ModelStore
    from serving.prediction_log import PredictionLog

M = TypeVar("M", bound=BaseModel)


class Served(TypedDict):
    """``app.extensions["driftloop"]``: built once by ``create_app``, shared by every request.
    ``settings`` are the server's (its only model's, or the first declared model's);
    ``fleet`` holds every model. A one-model server also names that model's ``engine``,
    ``store`` and ``log`` here, as it always did. ``shutdown`` stops the model threads and
    drains the prediction logs (gunicorn's ``worker_exit`` and the tests call it)."""

    settings: Settings
    fleet: ModelFleet
    secrets: Secrets
    loop_metrics: LoopCollector
    shutdown: Callable[[], None]
    engine: NotRequired[sa.Engine]
    store: NotRequired[ModelStore]
    log: NotRequired[PredictionLog]


def served() -> Served:
    return current_app.extensions["driftloop"]


def model_for(name: str | None, route: str) -> ServedModel:
    """The model a request is for, loaded: the one named in its path, else the server's only
    model. Without a name on a server of several models, a 400 naming the route to use
    (``route``, a path with ``{}`` for the name: ``/models/{}/predict``); an undeclared name,
    a 404. Kept in ``g.model`` for the hooks (metrics, the log of a refused request)."""
    fleet = served()["fleet"]
    if name is None:
        if not fleet.single:
            names = fleet.names
            raise RequestError(
                400,
                f"this server answers for {len(names)} models: send the request to "
                f"{route.format('<name>')}, for example {route.format(names[0])}",
            )
        name = fleet.names[0]
    fleet.settings(name)  # a 404 for an unknown name, before anything loads
    g.model_name = name
    chosen = g.model = fleet.get(name)
    return chosen


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
