"""``POST /feedback``: the true value of a predicted record, once per record."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from serving.auth import api_key_required
from serving.context import read_body, served
from serving.openapi import documented
from serving.prediction_log import DuplicateFeedback, record_feedback
from serving.schemas import FeedbackRequest, FeedbackResponse
from serving.validation import RequestError, check_feedback_value

bp = Blueprint("feedback", __name__)


@bp.post("/feedback")
@api_key_required
@documented(
    body=FeedbackRequest, answer=FeedbackResponse, status=201, refusals=(400, 409, 415, 422)
)
def feedback() -> tuple[Response, int]:
    """The true value of a predicted record.

    Kept apart from the prediction log and joined at analysis time, so it may arrive before
    its prediction is written; a second value for the same record is refused (409).
    """
    body = read_body(FeedbackRequest)
    context = served()
    check_feedback_value(body.value, context["settings"].data.task)
    try:
        record_feedback(
            context["engine"], context["settings"].model.name, body.record_id, body.value
        )
    except DuplicateFeedback as exc:
        raise RequestError(409, str(exc)) from None
    answer: FeedbackResponse = {"record_id": body.record_id, "stored": True}
    return jsonify(answer), 201
