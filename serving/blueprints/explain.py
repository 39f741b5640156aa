"""``POST /explain`` (a one-model server) and ``POST /models/<name>/explain``: per-record SHAP
values from the variant that would answer ``/predict``.

Same body, keys and record checks as ``/predict``, with fewer records per request
(``serving.explain_max_records``). Nothing is prepared at start-up or per prediction: the
explainer is built on the request (``driftloop.scoring.explain``), so ``/predict`` is unchanged. Not
written to the prediction log: an explanation answers no prediction a client acts on. Linear
models and the permutation fallback are explained against the version's logged input example
(a few training rows); trees need no background.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request

from serving import prediction
from serving.auth import api_key_required
from serving.blueprints.predict import ROUTING_HEADERS
from serving.context import model_for, read_body
from serving.openapi import documented
from serving.schemas import ExplainResponse, PredictRequest
from serving.validation import checked_records

bp = Blueprint("explain", __name__)


DOCUMENTED = documented(
    body=PredictRequest,
    answer=ExplainResponse,
    refusals=(400, 404, 409, 413, 415, 422, 503),
    parameters=ROUTING_HEADERS,
)


@bp.post("/explain")
@api_key_required
@DOCUMENTED
def explain() -> Response:
    """Explain one record or a few: SHAP values per original feature of the predicted class.

    Routed as ``/predict`` routes the same request, so the explanation is of the version that
    answers it. A server of several models answers 400 here, naming
    ``/models/<name>/explain``.
    """
    return answer(None)


@bp.post("/models/<name>/explain")
@api_key_required
@DOCUMENTED
def model_explain(name: str) -> Response:
    """Explain one record or a few with the model ``name``: SHAP values per original feature.

    Routed as ``/models/<name>/predict`` routes the same request; an unknown model is a 404.
    """
    return answer(name)


def answer(name: str | None) -> Response:
    from driftloop.scoring.explain import explain as shap_values

    request_id = g.request_id = uuid.uuid4().hex
    served_model = model_for(name, "/models/{}/explain")
    body = read_body(PredictRequest)
    settings, snapshot = served_model.settings, served_model.store.snapshot
    chosen = prediction.route(snapshot, body, request.headers, settings)
    model = chosen.model
    serving = settings.serving
    checked = checked_records(
        body.items,
        model.schema,
        serving.explain_max_records,
        {serving.sticky_field},
        serving.max_missing_share,
    )
    predictions, _ = model.predict(checked.frame)
    attributions = shap_values(
        model.pipeline, checked.frame, list(model.schema.names), background=model.example
    )
    answer: ExplainResponse = {
        "request_id": request_id,
        "model": settings.model.name,
        "version": model.version,
        "variant": model.variant,  # type: ignore[typeddict-item]
        "method": attributions.method,
        "quality": attributions.quality,  # type: ignore[typeddict-item]
        "explanations": [
            {"prediction": predicted, "shap": values}
            for predicted, values in zip(predictions, attributions.records(), strict=True)
        ],
    }
    return jsonify(answer)
