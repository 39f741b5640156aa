"""The Open Inference Protocol's REST routes (v2): the server's and each model's health and
metadata, and ``infer``, routed, checked, predicted and logged as ``/models/<name>/predict``
(``serving.inference`` holds the tensors' shapes)."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request

from serving import inference, prediction
from serving.auth import api_key_required
from serving.blueprints.predict import ROUTING_HEADERS
from serving.context import model_for, read_body, served
from serving.inference import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from serving.openapi import documented
from serving.schemas import PredictRequest
from serving.validation import RequestError

bp = Blueprint("inference", __name__, url_prefix="/v2")


@bp.get("")
@documented(answer=ServerMetadata)
def server_metadata() -> Response:
    """The server's name and protocol version (Open Inference Protocol)."""
    answer: ServerMetadata = {"name": "driftloop", "version": "2", "extensions": []}
    return jsonify(answer)


@bp.get("/health/live")
@documented(answer=ServerLive)
def server_live() -> Response:
    """The process is alive (Open Inference Protocol)."""
    answer: ServerLive = {"live": True}
    return jsonify(answer)


@bp.get("/health/ready")
@documented(answer=ServerReady, also=(400,))
def server_ready() -> tuple[Response, int]:
    """The server takes inference requests (Open Inference Protocol): a one-model server once
    its Production version is loaded (400 until then, as the protocol says); a server of
    several models once it runs, as each model loads on its first request."""
    fleet = served()["fleet"]
    ready = True
    if fleet.single:
        ready = model_for(None, "/v2/models/{}").store.snapshot.production is not None
    answer: ServerReady = {"ready": ready}
    return jsonify(answer), 200 if ready else 400


@bp.get("/models/<name>")
@documented(answer=ModelMetadata, refusals=(404, 503))
def model_metadata(name: str) -> Response:
    """The model's versions, its inputs (one per feature column) and outputs (loading it)."""
    model = model_for(name, "/v2/models/{}")
    snapshot = model.store.snapshot
    production = snapshot.production
    if production is None:
        raise RequestError(
            503, f"no Production version of {name} is loaded: {snapshot.error or 'none'}"
        )
    versions = [m.version for m in (production, snapshot.staging) if m is not None]
    return jsonify(inference.metadata_of(name, versions, production.schema, production.classes))


@bp.get("/models/<name>/ready")
@documented(answer=ModelReady, also=(400,), refusals=(404,))
def model_ready(name: str) -> tuple[Response, int]:
    """The model answers inference requests: its Production version is loaded (loading it);
    400 when not, as the protocol says."""
    ready = model_for(name, "/v2/models/{}").store.snapshot.production is not None
    answer: ModelReady = {"name": name, "ready": ready}
    return jsonify(answer), 200 if ready else 400


@bp.post("/models/<name>/infer")
@api_key_required
@documented(
    body=InferRequest,
    answer=InferResponse,
    refusals=(400, 404, 409, 413, 415, 422, 503),
    parameters=ROUTING_HEADERS,
)
def infer(name: str) -> Response:
    """Predict the records of input tensors with the model ``name`` (Open Inference Protocol).

    One input per feature column (shape ``[rows]``), or one input of shape
    ``[rows, features]`` in the signature's order; routed, checked and logged as
    ``/models/<name>/predict``. ``parameters.client_id`` is the sticky assignment key.
    """
    request_id = g.request_id = uuid.uuid4().hex
    model = model_for(name, "/v2/models/{}/infer")
    body = read_body(InferRequest)
    settings, snapshot = model.settings, model.store.snapshot
    if snapshot.production is None:  # the records' schema is the answering version's
        prediction.route(snapshot, PredictRequest.model_construct(), request.headers, settings)
    client = (body.parameters or {}).get(inference.CLIENT_ID)
    if client is not None and not isinstance(client, str):
        raise RequestError(422, f"parameters.{inference.CLIENT_ID} must be a string")
    sticky = settings.serving.sticky_field
    # the records are read against Production's signature; a request routed to Staging is
    # checked against Staging's as /predict checks it
    records = inference.records_of(body, snapshot.production.schema, sticky)
    envelope = PredictRequest.model_construct(record=None, records=records, client_id=client)
    chosen = g.route = prediction.route(snapshot, envelope, request.headers, settings)
    answered = g.prediction = prediction.predict(
        snapshot, chosen, records, settings, request_id, g.started
    )
    model.log.write(answered.log_rows)
    return jsonify(inference.response_of(answered, body, name))
