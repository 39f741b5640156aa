"""``/admin/*``: reload the models now, and set the traffic split (the admin token only)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from driftloop.ab.traffic import TrafficSplit
from driftloop.stages.traffic_split import save_split
from serving.auth import admin_required
from serving.context import read_body, served
from serving.openapi import documented
from serving.schemas import ReloadResponse, TrafficRequest, TrafficResponse
from serving.validation import RequestError

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.post("/reload")
@admin_required
@documented(answer=ReloadResponse)
def reload() -> Response:
    """Reload models and weights now, instead of at the next poll."""
    snapshot = served()["store"].refresh()
    answer: ReloadResponse = {
        "production": snapshot.production and snapshot.production.version,
        "staging": snapshot.staging and snapshot.staging.version,
        "registry_ok": snapshot.registry_ok,
    }
    return jsonify(answer)


@bp.put("/traffic")
@admin_required
@documented(body=TrafficRequest, answer=TrafficResponse, refusals=(400, 415, 422))
def traffic() -> Response:
    """Set the staging weight and shadow mode, for every worker (stored in the database)."""
    body = read_body(TrafficRequest)
    try:
        split = TrafficSplit(float(body.staging_weight), body.shadow)
    except (ValueError, OverflowError) as exc:  # OverflowError: an integer beyond float
        raise RequestError(422, str(exc)) from None
    context = served()
    save_split(context["engine"], context["settings"].model.name, split, who="admin-api")
    context["store"].refresh()
    answer: TrafficResponse = {"staging_weight": split.staging_weight, "shadow": split.shadow}
    return jsonify(answer)
