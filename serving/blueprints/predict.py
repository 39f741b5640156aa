"""``POST /predict`` (a one-model server) and ``POST /models/<name>/predict``: one record or a
batch, answered by that model's Production or Staging."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request

from driftloop.ab.traffic import VARIANTS
from serving import prediction
from serving.auth import api_key_required
from serving.context import model_for, read_body
from serving.openapi import documented, header
from serving.schemas import PredictRequest, PredictResponse

bp = Blueprint("predict", __name__)

# the headers that steer routing, shared by every endpoint routed as /predict is
ROUTING_HEADERS = (
    header(prediction.CLIENT_KEY_HEADER, "sticky assignment key"),
    header(prediction.FORCE_VARIANT_HEADER, "force a variant (testing)", {"enum": list(VARIANTS)}),
)


DOCUMENTED = documented(
    body=PredictRequest,
    answer=PredictResponse,
    refusals=(400, 404, 409, 413, 415, 422, 503),
    parameters=ROUTING_HEADERS,
)


@bp.post("/predict")
@api_key_required
@DOCUMENTED
def predict() -> Response:
    """Predict one record or a batch; routed to Production or Staging.

    Each record is checked against the signature of the version that answers: Production's
    (Record), or Staging's where it differs (StagingRecord). A server of several models
    answers 400 here, naming ``/models/<name>/predict``.
    """
    return answer(None)


@bp.post("/models/<name>/predict")
@api_key_required
@DOCUMENTED
def model_predict(name: str) -> Response:
    """Predict one record or a batch with the model ``name``; routed to its Production or
    Staging by its own traffic split.

    Each record is checked against the signature of the version that answers; an unknown
    model is a 404.
    """
    return answer(name)


def answer(name: str | None) -> Response:
    request_id = g.request_id = uuid.uuid4().hex
    model = model_for(name, "/models/{}/predict")
    body = read_body(PredictRequest)
    settings, snapshot = model.settings, model.store.snapshot
    chosen = g.route = prediction.route(snapshot, body, request.headers, settings)
    answered = g.prediction = prediction.predict(
        snapshot, chosen, body.items, settings, request_id, g.started
    )
    model.log.write(answered.log_rows)
    return jsonify(answered.response())
