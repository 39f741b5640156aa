"""``POST /feedback`` (a one-model server) and ``POST /models/<name>/feedback``: the true value
of a predicted record, once per record and model."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from driftloop.stages.feedback import DuplicateFeedback, record_feedback
from serving.auth import api_key_required
from serving.context import model_for, read_body, served
from serving.openapi import documented
from serving.schemas import FeedbackRequest, FeedbackResponse
from serving.validation import RequestError, check_feedback_value

bp = Blueprint("feedback", __name__)


DOCUMENTED = documented(
    body=FeedbackRequest,
    answer=FeedbackResponse,
    status=201,
    refusals=(400, 404, 409, 415, 422),
)


@bp.post("/feedback")
@api_key_required
@DOCUMENTED
def feedback() -> tuple[Response, int]:
    """The true value of a predicted record.

    Kept apart from the prediction log and joined at analysis time, so it may arrive before
    its prediction is written; a second value for the same record is refused (409). A server
    of several models answers 400 here, naming ``/models/<name>/feedback``.
    """
    return answer(None)


@bp.post("/models/<name>/feedback")
@api_key_required
@DOCUMENTED
def model_feedback(name: str) -> tuple[Response, int]:
    """The true value of a record the model ``name`` predicted.

    A record id is unique per model: another model's record of the same id is another record.
    """
    return answer(name)


def answer(name: str | None) -> tuple[Response, int]:
    fleet = served()["fleet"]
    if name is None and not fleet.single:
        model_for(name, "/models/{}/feedback")  # the 400 naming the route
    settings = fleet.settings(name or fleet.names[0])  # no model is loaded to store feedback
    g.model_name = settings.model.name
    body = read_body(FeedbackRequest)
    check_feedback_value(body.value, settings.data.task)
    try:
        record_feedback(
            fleet.engine(settings.model.name), settings.model.name, body.record_id, body.value
        )
    except DuplicateFeedback as exc:
        raise RequestError(409, str(exc)) from None
    answer: FeedbackResponse = {"record_id": body.record_id, "stored": True}
    return jsonify(answer), 201
