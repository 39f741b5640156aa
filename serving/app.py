"""The Flask prediction server: ``create_app(settings)`` builds everything; nothing starts at import.

Endpoints: ``POST /predict``, ``POST /feedback``, ``GET /health``, ``GET /ready``,
``GET /metrics``, ``GET /models``, ``GET /reports/`` (the list) and ``GET /reports/<path>``,
``POST /admin/reload``, ``PUT /admin/traffic``, ``GET /openapi.json`` and ``GET /docs``.
"""

from __future__ import annotations

import atexit
import hmac
import os
import time
import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from driftloop.config import Settings
from driftloop.database import open_database
from driftloop.settings_loader import load_settings
from driftloop.storage import FORCED, RANDOM, STICKY
from serving import json_codec, metrics
from serving.models import ModelSnapshot, ModelStore
from serving.openapi import DOCS_PAGE, openapi_spec
from serving.prediction_log import (
    DuplicateFeedback,
    PredictionLog,
    record_feedback,
)
from serving.reports_index import render_index, report_entries
from serving.routing import PRODUCTION, STAGING, VARIANTS, TrafficSplit, save_split
from serving.validation import (
    FeedbackRequest,
    PredictRequest,
    RequestError,
    check_feedback_value,
    checked_records,
    parse,
)

ADMIN_TOKEN_ENV, API_KEYS_ENV = "DRIFTLOOP_ADMIN_TOKEN", "DRIFTLOOP_API_KEYS"
CLIENT_KEY_HEADER, FORCE_VARIANT_HEADER, API_KEY_HEADER = "X-Client-Key", "X-Variant", "X-API-Key"


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of bytes: a header may hold any Latin-1 text, and
    ``hmac.compare_digest`` refuses strings with non-ASCII characters (a 500)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """Build the server for ``settings`` (default: the project config)."""
    settings = settings or load_settings()
    engine = open_database(settings)
    store = ModelStore(settings, engine)
    store.refresh()
    if background:
        store.start_polling()
    log = PredictionLog(engine, retention_days=settings.serving.retention_days)

    app = Flask(__name__)
    app.json = json_codec.OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.serving.max_body_bytes
    app.extensions["driftloop"] = {
        "settings": settings,
        "store": store,
        "log": log,
        "engine": engine,
    }

    def shutdown() -> None:
        store.close()
        log.close()

    app.extensions["driftloop"]["shutdown"] = shutdown
    atexit.register(shutdown)
    loop_metrics = metrics.LoopCollector(engine, settings.model.name, lambda: store.snapshot)
    api_keys = {k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()}
    admin_token = os.environ.get(ADMIN_TOKEN_ENV, "")

    def check_api_key() -> None:
        if not settings.serving.require_api_key:
            return
        if not api_keys:
            raise RequestError(
                503, f"API keys are required but none are configured ({API_KEYS_ENV})"
            )
        given = request.headers.get(API_KEY_HEADER, "")
        if not any(same_secret(given, key) for key in api_keys):
            raise RequestError(401, f"a valid API key is required in the {API_KEY_HEADER} header")

    def check_admin() -> None:
        if not admin_token:
            raise RequestError(403, f"admin endpoints are disabled: set {ADMIN_TOKEN_ENV}")
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not same_secret(given, admin_token):
            raise RequestError(401, "a valid admin token is required (Authorization: Bearer ...)")

    def json_body() -> Any:
        if not request.is_json:
            raise RequestError(415, "send the body as JSON with Content-Type: application/json")
        try:
            return json_codec.loads(request.get_data(cache=False))
        except ValueError as exc:  # UnicodeDecodeError is one too
            raise RequestError(400, f"the body is not valid JSON: {exc}") from None

    @app.errorhandler(RequestError)
    def refused(error: RequestError) -> tuple[Response, int]:
        if request.endpoint == "predict":
            log.write(
                [
                    {
                        "request_id": g.get("request_id") or uuid.uuid4().hex,
                        "model_name": settings.model.name,
                        # known once routed: the A/B guardrails count failures per variant
                        "variant": g.get("variant"),
                        "model_version": g.get("model_version"),
                        "status": error.status,
                        "error": "; ".join([error.message, *error.details]),
                        "shadow": False,
                    }
                ]
            )
        metrics.REQUESTS.labels(request.endpoint or "unknown", str(error.status)).inc()
        if request.endpoint == "predict" and g.get("variant"):
            metrics.ERRORS.labels(g.variant, str(error.status)).inc()
        return jsonify(error=error.message, details=error.details), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        message = {413: f"the body is larger than {settings.serving.max_body_bytes} bytes"}.get(
            status, error.description
        )
        return refused(RequestError(status, message))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        app.logger.exception("unexpected error")
        return refused(RequestError(500, f"internal error ({type(error).__name__}); it is logged"))

    @app.post("/predict")
    def predict() -> Response:
        started = time.perf_counter()
        g.request_id = uuid.uuid4().hex
        check_api_key()
        body = parse(PredictRequest, json_body())
        snapshot: ModelSnapshot = store.snapshot
        if snapshot.production is None:
            raise RequestError(
                503,
                f"no Production version of {settings.model.name} is loaded: {snapshot.error or 'run driftloop bootstrap'}",
            )
        variant, assignment = choose_variant(snapshot, body)
        model = snapshot.model(variant)
        g.variant, g.model_version = variant, model.version
        sticky = settings.serving.sticky_field
        checked = checked_records(
            body.items,
            model.schema,
            settings.serving.max_records,
            {sticky},
            settings.serving.max_missing_share,
        )
        frame, g.missing = checked.frame, checked.missing_names()
        metrics.count_missing(frame.columns, checked.missing)
        predictions, probabilities = model.predict(frame)
        # unique because the request id is; and a record's id names the request it came in
        record_ids = [f"{g.request_id}-{i}" for i in range(len(body.items))]
        elapsed = (time.perf_counter() - started) * 1000
        rows = log_rows(
            model,
            record_ids,
            body.items,
            predictions,
            probabilities,
            elapsed,
            shadow=False,
            assignment=assignment,
        )
        if snapshot.split.shadow and variant == PRODUCTION and snapshot.staging is not None:
            rows += shadow_rows(snapshot, frame, record_ids, body.items, elapsed, assignment)
        log.write(rows)
        metrics.PREDICTIONS.labels(variant, model.version, "false").inc(len(record_ids))
        metrics.LATENCY.labels(variant).observe(time.perf_counter() - started)
        metrics.REQUESTS.labels("predict", "200").inc()
        if probabilities is not None and model.classes is not None:
            names = [str(c) for c in model.classes]
            answers = [
                {
                    "record_id": record_id,
                    "prediction": prediction,
                    "probabilities": dict(zip(names, row, strict=True)),
                }
                for record_id, prediction, row in zip(
                    record_ids, predictions, probabilities, strict=True
                )
            ]
        else:
            answers = [
                {"record_id": record_id, "prediction": prediction}
                for record_id, prediction in zip(record_ids, predictions, strict=True)
            ]
        return jsonify(
            request_id=g.request_id,
            model=settings.model.name,
            version=model.version,
            variant=variant,
            predictions=answers,
        )

    def choose_variant(snapshot: ModelSnapshot, body: PredictRequest) -> tuple[str, str]:
        """The variant and how it was assigned (random, sticky or forced)."""
        forced = request.headers.get(FORCE_VARIANT_HEADER)
        if forced:
            if forced not in VARIANTS:
                raise RequestError(
                    400, f"{FORCE_VARIANT_HEADER} must be one of {list(VARIANTS)}, got {forced!r}"
                )
            if snapshot.model(forced) is None:
                raise RequestError(409, f"there is no {forced} version to force")
            return forced, FORCED
        key = request.headers.get(CLIENT_KEY_HEADER) or body.client_id
        if key is None and len(body.items) == 1:
            value = body.items[0].get(settings.serving.sticky_field)
            key = None if value is None else str(value)
        how = RANDOM if key is None else STICKY
        if snapshot.staging is None:
            return PRODUCTION, how
        return snapshot.split.variant_for(key), how

    def shadow_rows(snapshot, frame, record_ids, items, elapsed, assignment):
        """Staging's unreturned answers; its failure is logged, never the client's problem."""
        staging = snapshot.staging
        try:
            predictions, probabilities = staging.predict(frame)
        except Exception as exc:
            app.logger.exception("shadow prediction failed")
            return [
                {
                    "request_id": g.request_id,
                    "model_name": settings.model.name,
                    "variant": staging.variant,
                    "model_version": staging.version,
                    "shadow": True,
                    "status": 500,
                    "error": f"shadow prediction failed: {type(exc).__name__}: {exc}",
                }
            ]
        return log_rows(
            staging,
            record_ids,
            items,
            predictions,
            probabilities,
            elapsed,
            shadow=True,
            assignment=assignment,
        )

    def log_rows(
        model, record_ids, items, predictions, probabilities, elapsed, *, shadow, assignment
    ):
        """One log row per answered record of this request (``g.request_id``)."""
        sticky = settings.serving.sticky_field
        common = {
            "request_id": g.request_id,
            "model_name": settings.model.name,
            "variant": model.variant,
            "model_version": model.version,
            "shadow": shadow,
            "status": 200,
            "latency_ms": elapsed,
            "assignment": assignment,
        }
        missing = g.get("missing") or [None] * len(record_ids)
        return [
            {
                **common,
                "record_id": record_id,
                "missing": missing[i],
                # the sticky key routes the request; it is not a model input
                "inputs": {k: v for k, v in item.items() if k != sticky}
                if sticky in item
                else item,
                "output": (
                    {"prediction": prediction}
                    if probabilities is None
                    else {"prediction": prediction, "probabilities": probabilities[i]}
                ),
            }
            for i, (record_id, item, prediction) in enumerate(
                zip(record_ids, items, predictions, strict=True)
            )
        ]

    @app.post("/feedback")
    def feedback() -> tuple[Response, int]:
        check_api_key()
        body = parse(FeedbackRequest, json_body())
        check_feedback_value(body.value, settings.data.task)
        try:
            record_feedback(engine, body.record_id, body.value)
        except DuplicateFeedback as exc:
            metrics.FEEDBACK.labels("duplicate").inc()
            raise RequestError(409, str(exc)) from None
        metrics.FEEDBACK.labels("stored").inc()
        metrics.REQUESTS.labels("feedback", "201").inc()
        return jsonify(record_id=body.record_id, stored=True), 201

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/ready")
    def ready() -> tuple[Response, int]:
        snapshot = store.snapshot
        if snapshot.production is None:
            return jsonify(ready=False, reason=snapshot.error or "no Production version"), 503
        status = "ok" if snapshot.registry_ok else "degraded: serving the last good models"
        return jsonify(
            ready=True,
            status=status,
            error=snapshot.error,
            refreshed_at=snapshot.refreshed_at and snapshot.refreshed_at.isoformat(),
        ), 200

    @app.get("/metrics")
    def prometheus() -> Response:
        payload, content_type = metrics.render(loop_metrics)
        return Response(payload, content_type=content_type)

    @app.get("/models")
    def models() -> Response:
        snapshot = store.snapshot
        weights = {STAGING: snapshot.split.staging_weight if snapshot.staging else 0.0}
        weights[PRODUCTION] = 1.0 - weights[STAGING]
        return jsonify(
            model=settings.model.name,
            variants={
                v: (
                    None
                    if snapshot.model(v) is None
                    else {
                        "version": snapshot.model(v).version,
                        "features": list(snapshot.model(v).schema.names),
                        "nullable": sorted(snapshot.model(v).schema.nullable),
                    }
                )
                for v in VARIANTS
            },
            weights=weights,
            shadow=snapshot.split.shadow,
            registry_ok=snapshot.registry_ok,
        )

    @app.get("/reports/")
    def reports_list() -> Response:
        entries = report_entries(engine, settings.storage.reports_dir)
        return Response(render_index(entries), content_type="text/html; charset=utf-8")

    @app.get("/reports/<path:name>")
    def reports(name: str) -> Response:
        return send_from_directory(settings.storage.reports_dir, name)

    @app.post("/admin/reload")
    def reload() -> Response:
        check_admin()
        snapshot = store.refresh()
        return jsonify(
            production=snapshot.production and snapshot.production.version,
            staging=snapshot.staging and snapshot.staging.version,
            registry_ok=snapshot.registry_ok,
        )

    @app.put("/admin/traffic")
    def traffic() -> Response:
        check_admin()
        body = json_body()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("staging_weight"), int | float)
            or isinstance(body.get("staging_weight"), bool)
            or not isinstance(body.get("shadow", False), bool)  # "false" is not false
            or set(body) - {"staging_weight", "shadow"}
        ):
            raise RequestError(422, 'send {"staging_weight": 0..1, "shadow": false}')
        try:
            split = TrafficSplit(float(body["staging_weight"]), body.get("shadow", False))
        except (ValueError, OverflowError) as exc:  # OverflowError: an integer beyond float
            raise RequestError(422, str(exc)) from None
        save_split(engine, settings.model.name, split, who="admin-api")
        store.refresh()
        return jsonify(staging_weight=split.staging_weight, shadow=split.shadow)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_spec(settings))

    @app.get("/docs")
    def docs() -> Response:
        return Response(DOCS_PAGE, content_type="text/html")

    return app
