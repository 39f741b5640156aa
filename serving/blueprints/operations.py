"""What operators and tools read: health, readiness, metrics, the loaded models, the reports and
the API's own description."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, send_from_directory

from driftloop.ab.traffic import PRODUCTION, STAGING, VARIANTS
from driftloop.config import Settings
from serving import metrics
from serving.context import model_for, served
from serving.openapi import DOCS_PAGE, documented, openapi_spec
from serving.reports_index import render_index, report_entries
from serving.schemas import Health, Models, Ready

bp = Blueprint("operations", __name__)


@bp.get("/health")
@documented(answer=Health)
def health() -> Response:
    """The process is alive."""
    answer: Health = {"status": "ok"}
    return jsonify(answer)


@bp.get("/ready")
@documented(answer=Ready, also=(503,))
def ready() -> tuple[Response, int]:
    """A Production model is loaded (degraded when the registry is away); 503 until then.

    A server of several models is ready once it runs: each model loads on its first request
    (``GET /v2/models/<name>/ready`` asks about one).
    """
    fleet = served()["fleet"]
    if not fleet.single:
        loaded = fleet.resident()
        many: Ready = {
            "ready": True,
            "status": f"ok: {len(fleet.names)} models, {len(loaded)} loaded in this worker",
            "models": fleet.names,
            "loaded": loaded,
        }
        return jsonify(many), 200
    snapshot = model_for(None, "/models/{}").store.snapshot
    if snapshot.production is None:
        waiting: Ready = {"ready": False, "reason": snapshot.error or "no Production version"}
        return jsonify(waiting), 503
    status = "ok" if snapshot.registry_ok else "degraded: serving the last good models"
    answer: Ready = {
        "ready": True,
        "status": status,
        "error": snapshot.error,
        "refreshed_at": snapshot.refreshed_at and snapshot.refreshed_at.isoformat(),
    }
    return jsonify(answer), 200


@bp.get("/metrics")
@documented(answer="Prometheus metrics of every worker", media="text/plain")
def prometheus() -> Response:
    """Prometheus metrics of every worker, and the loop's state of every model."""
    payload, content_type = metrics.render(served()["loop_metrics"])
    return Response(payload, content_type=content_type)


@bp.get("/models")
@documented(answer=Models, refusals=(400,))
def models() -> Response:
    """Loaded versions, their features, the variants' weights and shadow mode.

    A server of several models answers 400 here, naming ``/models/<name>``.
    """
    return _models(None)


@bp.get("/models/<name>")
@documented(answer=Models, refusals=(404,))
def model_models(name: str) -> Response:
    """The model ``name``'s loaded versions, features, weights and shadow mode (loading it)."""
    return _models(name)


def _models(name: str | None) -> Response:
    model = model_for(name, "/models/{}")
    snapshot = model.store.snapshot
    weights = {STAGING: snapshot.split.staging_weight if snapshot.staging else 0.0}
    weights[PRODUCTION] = 1.0 - weights[STAGING]
    variants = {}
    for variant in VARIANTS:
        loaded = snapshot.model(variant)
        variants[variant] = loaded and {
            "version": loaded.version,
            "features": list(loaded.schema.names),
            "nullable": sorted(loaded.schema.nullable),
        }
    answer: Models = {
        "model": model.name,
        "variants": variants,
        "weights": weights,
        "shadow": snapshot.split.shadow,
        "split_version": snapshot.split.version,
        "registry_ok": snapshot.registry_ok,
    }
    return jsonify(answer)


def _settings_of(name: str | None) -> Settings:
    """A model's settings, without loading the model."""
    fleet = served()["fleet"]
    if name is None and not fleet.single:
        model_for(None, "/models/{}/reports/")  # the 400 naming the route
    settings = fleet.settings(name or fleet.names[0])
    g.model_name = settings.model.name  # for the request's metrics
    return settings


@bp.get("/reports/")
@documented(answer="an HTML page", media="text/html", refusals=(400,))
def reports_list() -> Response:
    """Drift and A/B reports, newest first, with their verdicts (HTML)."""
    return _reports_list(None)


@bp.get("/models/<name>/reports/")
@documented(answer="an HTML page", media="text/html", refusals=(404,))
def model_reports_list(name: str) -> Response:
    """The model ``name``'s drift and A/B reports, newest first, with their verdicts (HTML)."""
    return _reports_list(name)


def _reports_list(name: str | None) -> Response:
    settings = _settings_of(name)
    engine = served()["fleet"].engine(settings.model.name)
    entries = report_entries(engine, settings.model.name, settings.storage.reports_dir)
    return Response(render_index(entries), content_type="text/html; charset=utf-8")


@bp.get("/reports/<path:name>")
@documented(answer="the report file", media="text/html", refusals=(400, 404))
def reports(name: str) -> Response:
    """A drift or A/B report (read-only)."""
    return send_from_directory(_settings_of(None).storage.reports_dir, name)


@bp.get("/models/<model>/reports/<path:name>")
@documented(answer="the report file", media="text/html", refusals=(404,))
def model_reports(model: str, name: str) -> Response:
    """A drift or A/B report of the model ``model`` (read-only)."""
    return send_from_directory(_settings_of(model).storage.reports_dir, name)


@bp.get("/openapi.json")
def openapi() -> Response:
    context = served()
    fleet = context["fleet"]
    snapshot = model_for(None, "/models/{}").store.snapshot if fleet.single else None
    return jsonify(openapi_spec(current_app, snapshot, context["settings"], fleet.names))


@bp.get("/docs")
def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html")
