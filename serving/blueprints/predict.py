"""``POST /predict``: one record or a batch, answered by Production or Staging."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request

from driftloop.ab.traffic import VARIANTS
from serving import prediction
from serving.auth import api_key_required
from serving.context import read_body, served
from serving.openapi import documented, header
from serving.schemas import PredictRequest, PredictResponse

bp = Blueprint("predict", __name__)

# the headers that steer routing, shared by every endpoint routed as /predict is
ROUTING_HEADERS = (
    header(prediction.CLIENT_KEY_HEADER, "sticky assignment key"),
    header(prediction.FORCE_VARIANT_HEADER, "force a variant (testing)", {"enum": list(VARIANTS)}),
)


@bp.post("/predict")
@api_key_required
@documented(
    body=PredictRequest,
    answer=PredictResponse,
    refusals=(400, 409, 413, 415, 422, 503),
    parameters=ROUTING_HEADERS,
)
def predict() -> Response:
    """Predict one record or a batch; routed to Production or Staging.

    Each record is checked against the signature of the version that answers: Production's
    (Record), or Staging's where it differs (StagingRecord).
    """
    request_id = g.request_id = uuid.uuid4().hex
    body = read_body(PredictRequest)
    context = served()
    settings, snapshot = context["settings"], context["store"].snapshot
    chosen = g.route = prediction.route(snapshot, body, request.headers, settings)
    answered = g.prediction = prediction.predict(
        snapshot, chosen, body.items, settings, request_id, g.started
    )
    context["log"].write(answered.log_rows)
    return jsonify(answered.response())
