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
    """The view's name (``predict``, ``traffic``...), without its blueprint's, and the same
    for a model's route as for a one-model server's (``model_predict`` is ``predict``)."""
    endpoint = request.endpoint
    if endpoint is None:
        return "unknown"
    return ENDPOINT_NAMES.get(endpoint.rpartition(".")[2]) or endpoint.rpartition(".")[2]


# views counted as another: a model's route counts as the one-model route, OIP's infer is a
# prediction like /predict
ENDPOINT_NAMES = {
    "model_predict": "predict",
    "model_explain": "explain",
    "model_feedback": "feedback",
    "model_reload": "reload",
    "model_traffic": "traffic",
    "model_models": "models",
    "model_reports_list": "reports_list",
    "model_reports": "reports",
}
PREDICTING = {"predict", "infer"}


def _model() -> str:
    """The declared model the request was for ("" when none: an unknown name, /health)."""
    name = g.get("model_name")
    if name is not None:
        return name
    fleet = served()["fleet"]
    asked = (request.view_args or {}).get("name")
    if asked in fleet.models:
        return asked
    return fleet.names[0] if fleet.single else ""


def _count(response: Response) -> Response:
    if request.method == "OPTIONS":  # Flask's automatic answer, not the view's
        return response
    endpoint, status, model = _endpoint(), response.status_code, _model()
    metrics.REQUESTS.labels(model, endpoint, str(status)).inc()
    if endpoint in PREDICTING:
        answered = g.get("prediction")
        if answered is not None:
            _count_prediction(model, answered)
        elif status >= 400 and model:
            _log_refused_prediction(model, status)
    elif endpoint == "feedback" and status in FEEDBACK_OUTCOMES:
        metrics.FEEDBACK.labels(model, FEEDBACK_OUTCOMES[status]).inc()
    return response


def _count_prediction(name: str, answered: Prediction) -> None:
    model = answered.model
    metrics.count_missing(name, model.schema.names, answered.missing)
    metrics.PREDICTIONS.labels(name, model.variant, model.version, "false").inc(
        len(answered.record_ids)
    )
    metrics.LATENCY.labels(name, model.variant).observe(time.perf_counter() - g.started)


def _log_refused_prediction(name: str, status: int) -> None:
    """The refused request's row, in its model's log (a request for no declared model, or
    refused before its model's log is open, is counted but has no log to go to)."""
    chosen = g.get("route")  # known once routed
    variant = None if chosen is None else chosen.model.variant
    served_model = g.get("model")
    if served_model is not None:
        prediction_log = served_model.log
    else:
        prediction_log = served()["fleet"].open_log_of(name)
    if prediction_log is not None:
        prediction_log.write(
            [
                {
                    "request_id": g.get("request_id") or uuid.uuid4().hex,
                    "model_name": name,
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
        metrics.ERRORS.labels(name, variant, str(status)).inc()


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
