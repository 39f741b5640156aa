"""The routes of the driftloop plugin: the page, its JSON, and the HTML reports by id.

Thin wiring over ``driftloop.ui.overview``: every route requires a user whom Airflow's auth manager
lets see plugin views (anonymous: 401, an invalid token: 403). Routes are plain functions, so
FastAPI runs the blocking database and MLflow reads in its thread pool.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from driftloop.config import Settings
from driftloop.settings_loader import DEFAULT_CONFIG_NAME, config_path, load_settings

PROJECT = Path(__file__).resolve().parents[2]
ICON = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='currentColor' "
    "stroke-width='2'><path d='M3 12a9 9 0 0 1 15-6.7L21 8M21 3v5h-5M21 12a9 9 0 0 1-15 6.7L3 16"
    "M3 21v-5h5'/></svg>"
)


@cache
def _opened() -> tuple[Settings, sa.Engine]:
    """The settings (``$DRIFTLOOP_CONFIG``, else the project's driftloop.yaml) and database."""
    from driftloop.database import open_database

    settings = load_settings(config_path(default=PROJECT / DEFAULT_CONFIG_NAME))
    return settings, open_database(settings)


def opened() -> tuple[Settings, sa.Engine]:
    try:
        return _opened()
    except Exception as exc:  # a config or database problem is the operator's to fix: say it
        raise HTTPException(503, f"driftloop cannot read its settings or database: {exc}") from exc


def create_app() -> FastAPI:
    app = FastAPI(
        title="driftloop",
        description="driftloop's loop at a glance: versions, drift, A/B test, retraining.",
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    )

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        from driftloop.ui.overview import overview
        from driftloop.ui.overview_page import render_page

        base = request.scope.get("root_path", "").rstrip("/")
        return HTMLResponse(render_page(overview(*opened()), base))

    @app.get("/api/overview")
    def overview_json() -> dict[str, Any]:
        from driftloop.ui.overview import overview

        return overview(*opened())

    @app.get("/reports/{kind}/{report_id}", response_class=FileResponse)
    def report(kind: str, report_id: int) -> FileResponse:
        from driftloop.ui.overview import report_path

        if kind not in ("drift", "ab"):
            raise HTTPException(404, f"no report kind {kind!r}: drift or ab")
        try:
            settings, engine = opened()
            path = report_path(engine, kind, report_id, settings.model.name)  # type: ignore[arg-type]
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        return FileResponse(path, media_type="text/html")

    @app.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    return app
