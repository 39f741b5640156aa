"""``/admin/*``: reload the models now, and set the traffic split (the admin token only); for a
one-model server, and per model (``/admin/models/<name>/...``) on any server."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from driftloop.ab.traffic import TrafficSplit
from driftloop.stages.traffic_split import save_split
from serving.auth import admin_required
from serving.context import model_for, read_body
from serving.openapi import documented
from serving.schemas import ReloadResponse, TrafficRequest, TrafficResponse
from serving.validation import RequestError

bp = Blueprint("admin", __name__, url_prefix="/admin")
RELOAD = documented(answer=ReloadResponse, refusals=(400, 404))
TRAFFIC = documented(body=TrafficRequest, answer=TrafficResponse, refusals=(400, 404, 415, 422))


@bp.post("/reload")
@admin_required
@RELOAD
def reload() -> Response:
    """Reload models and weights now, instead of at the next poll."""
    return _reload(None)


@bp.post("/models/<name>/reload")
@admin_required
@RELOAD
def model_reload(name: str) -> Response:
    """Reload the model ``name``'s versions and weights now (loading it if it is not)."""
    return _reload(name)


def _reload(name: str | None) -> Response:
    snapshot = model_for(name, "/admin/models/{}/reload").store.refresh()
    answer: ReloadResponse = {
        "production": snapshot.production and snapshot.production.version,
        "staging": snapshot.staging and snapshot.staging.version,
        "registry_ok": snapshot.registry_ok,
    }
    return jsonify(answer)


@bp.put("/traffic")
@admin_required
@TRAFFIC
def traffic() -> Response:
    """Set the staging weight and shadow mode, for every worker (stored in the database)."""
    return _traffic(None)


@bp.put("/models/<name>/traffic")
@admin_required
@TRAFFIC
def model_traffic(name: str) -> Response:
    """Set the model ``name``'s staging weight and shadow mode, for every worker."""
    return _traffic(name)


def _traffic(name: str | None) -> Response:
    model = model_for(name, "/admin/models/{}/traffic")
    body = read_body(TrafficRequest)
    try:
        split = TrafficSplit(float(body.staging_weight), body.shadow)
    except (ValueError, OverflowError) as exc:  # OverflowError: an integer beyond float
        raise RequestError(422, str(exc)) from None
    save_split(model.engine, model.name, split, who="admin-api")
    model.store.refresh()
    answer: TrafficResponse = {"staging_weight": split.staging_weight, "shadow": split.shadow}
    return jsonify(answer)
