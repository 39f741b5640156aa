"""What happens around every request, so the routes hold none of it: the clock starts before
it; afterwards its Prometheus metrics are counted and a refused ``/predict`` is written to the
prediction log (the A/B guardrails count failures per variant); every error becomes a JSON
body with a sentence.

The routes leave what the hooks need in ``flask.g``: ``route`` once ``/predict`` has picked a
variant, ``prediction`` once it has answered; the error handlers leave ``refusal``.
"""

from __future__ import annotations

import time
import uuid

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from serving import metrics
from serving.context import served
from serving.prediction import Prediction
from serving.schemas import Error
from serving.validation import RequestError

FEEDBACK_OUTCOMES = {201: "stored", 409: "duplicate"}


def install(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_count)
    app.register_error_handler(RequestError, _refused)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _start() -> None:
    g.started = time.perf_counter()


def _endpoint() -> str:
    """The view's name (``predict``, ``traffic``...), without its blueprint's."""
    endpoint = request.endpoint
    return "unknown" if endpoint is None else endpoint.rpartition(".")[2]


def _count(response: Response) -> Response:
    if request.method == "OPTIONS":  # Flask's automatic answer, not the view's
        return response
    endpoint, status = _endpoint(), response.status_code
    metrics.REQUESTS.labels(endpoint, str(status)).inc()
    if endpoint == "predict":
        answered = g.get("prediction")
        if answered is not None:
            _count_prediction(answered)
        elif status >= 400:
            _log_refused_prediction(status)
    elif endpoint == "feedback" and status in FEEDBACK_OUTCOMES:
        metrics.FEEDBACK.labels(FEEDBACK_OUTCOMES[status]).inc()
    return response


def _count_prediction(answered: Prediction) -> None:
    model = answered.model
    metrics.count_missing(model.schema.names, answered.missing)
    metrics.PREDICTIONS.labels(model.variant, model.version, "false").inc(len(answered.record_ids))
    metrics.LATENCY.labels(model.variant).observe(time.perf_counter() - g.started)


def _log_refused_prediction(status: int) -> None:
    chosen = g.get("route")  # known once routed
    variant = None if chosen is None else chosen.model.variant
    context = served()
    context["log"].write(
        [
            {
                "request_id": g.get("request_id") or uuid.uuid4().hex,
                "model_name": context["settings"].model.name,
                "variant": variant,
                "model_version": None if chosen is None else chosen.model.version,
                "split_version": None if chosen is None else chosen.split_version,
                "status": status,
                "error": g.get("refusal"),
                "shadow": False,
            }
        ]
    )
    if variant is not None:
        metrics.ERRORS.labels(variant, str(status)).inc()


def _refused(error: RequestError) -> tuple[Response, int]:
    g.refusal = "; ".join([error.message, *error.details])
    body: Error = {"error": error.message, "details": error.details}
    return jsonify(body), error.status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    if status == 413:
        limit = served()["settings"].serving.max_body_bytes
        return _refused(RequestError(status, f"the body is larger than {limit} bytes"))
    return _refused(RequestError(status, error.description or error.name))


def _unexpected(error: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unexpected error")
    return _refused(RequestError(500, f"internal error ({type(error).__name__}); it is logged"))
