"""What operators and tools read: health, readiness, metrics, the loaded models, the reports and
the API's own description."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from driftloop.ab.traffic import PRODUCTION, STAGING, VARIANTS
from serving import metrics
from serving.context import served
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
    """A Production model is loaded (degraded when the registry is away); 503 until then."""
    snapshot = served()["store"].snapshot
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
    """Prometheus metrics of every worker, and the loop's state."""
    payload, content_type = metrics.render(served()["loop_metrics"])
    return Response(payload, content_type=content_type)


@bp.get("/models")
@documented(answer=Models)
def models() -> Response:
    """Loaded versions, their features, the variants' weights and shadow mode."""
    context = served()
    snapshot = context["store"].snapshot
    weights = {STAGING: snapshot.split.staging_weight if snapshot.staging else 0.0}
    weights[PRODUCTION] = 1.0 - weights[STAGING]
    variants = {}
    for variant in VARIANTS:
        model = snapshot.model(variant)
        variants[variant] = model and {
            "version": model.version,
            "features": list(model.schema.names),
            "nullable": sorted(model.schema.nullable),
        }
    answer: Models = {
        "model": context["settings"].model.name,
        "variants": variants,
        "weights": weights,
        "shadow": snapshot.split.shadow,
        "split_version": snapshot.split.version,
        "registry_ok": snapshot.registry_ok,
    }
    return jsonify(answer)


@bp.get("/reports/")
@documented(answer="an HTML page", media="text/html")
def reports_list() -> Response:
    """Drift and A/B reports, newest first, with their verdicts (HTML)."""
    context = served()
    settings = context["settings"]
    entries = report_entries(context["engine"], settings.model.name, settings.storage.reports_dir)
    return Response(render_index(entries), content_type="text/html; charset=utf-8")


@bp.get("/reports/<path:name>")
@documented(answer="the report file", media="text/html", refusals=(404,))
def reports(name: str) -> Response:
    """A drift or A/B report (read-only)."""
    return send_from_directory(served()["settings"].storage.reports_dir, name)


@bp.get("/openapi.json")
def openapi() -> Response:
    context = served()
    return jsonify(openapi_spec(current_app, context["store"].snapshot, context["settings"]))


@bp.get("/docs")
def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html")
