"""The routes of the driftloop plugin: the pages, their JSON, and the HTML reports by id.

A config of several models (``models:``) opens on their overview (``driftloop.ui.models``),
one row each linked to the model's own page under ``/models/<name>/``; a config of one model
opens on that model's page, as before. Thin wiring over ``driftloop.ui``: every route requires
a user whom Airflow's auth manager lets see plugin views (anonymous: 401, an invalid token:
403). Routes are plain functions, so FastAPI runs the blocking database and MLflow reads in its
thread pool.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from driftloop.config import Settings
from driftloop.settings_loader import DEFAULT_CONFIG_NAME, config_path

if TYPE_CHECKING:
    from driftloop.ui.models import Deployment

PROJECT = Path(__file__).resolve().parents[2]
ICON = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='currentColor' "
    "stroke-width='2'><path d='M3 12a9 9 0 0 1 15-6.7L21 8M21 3v5h-5M21 12a9 9 0 0 1-15 6.7L3 16"
    "M3 21v-5h5'/></svg>"
)


@cache
def _deployment() -> Deployment:
    """The models of ``$DRIFTLOOP_CONFIG`` (else the project's driftloop.yaml), loaded once."""
    from driftloop.ui.models import load_deployment

    return load_deployment(config_path(default=PROJECT / DEFAULT_CONFIG_NAME))


def deployment() -> Deployment:
    try:
        return _deployment()
    except Exception as exc:  # a config problem is the operator's to fix: say it
        raise HTTPException(503, f"driftloop cannot read its settings: {exc}") from exc


def opened(name: str | None, route: str) -> tuple[Settings, sa.Engine]:
    """Model ``name``'s settings and database (``None``: the only model); ``route`` is the
    model's own route for what was asked, named when the deployment has several."""
    from driftloop.ui.models import UnknownModel

    found = deployment()
    try:
        settings = found.settings(name)
        return settings, found.engine(settings)
    except UnknownModel as exc:
        if name is not None:
            raise HTTPException(404, str(exc)) from exc
        raise HTTPException(400, f"{exc}: ask {route}") from exc
    except Exception as exc:  # a broken entry or database is the operator's to fix: say it
        which = f"model {name!r}" if name else "driftloop"
        raise HTTPException(503, f"{which} cannot read its settings or database: {exc}") from exc


def _root(request: Request) -> str:
    """The plugin's URL prefix as this request came in (``/driftloop`` under Airflow)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def create_app() -> FastAPI:
    app = FastAPI(
        title="driftloop",
        description="driftloop's loop at a glance: every model, and each model's versions, "
        "drift, A/B test and retraining.",
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    )

    def model_page(request: Request, name: str | None) -> HTMLResponse:
        from driftloop.ui.overview import overview
        from driftloop.ui.overview_page import render_page

        root = _root(request)
        view = overview(*opened(name, f"{root}/models/<name>/"))
        if name is None:
            return HTMLResponse(render_page(view, root))
        home = f"{root}/" if deployment().many else None
        return HTMLResponse(render_page(view, f"{root}/models/{name}", home))

    def report(request: Request, name: str | None, kind: str, report_id: int) -> FileResponse:
        from driftloop.ui.overview import report_path

        if kind not in ("drift", "ab"):
            raise HTTPException(404, f"no report kind {kind!r}: drift or ab")
        route = f"{_root(request)}/models/<name>/reports/{kind}/{report_id}"
        settings, engine = opened(name, route)
        try:
            path = report_path(engine, kind, report_id, settings.model.name)  # type: ignore[arg-type]
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        return FileResponse(path, media_type="text/html")

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        """The overview of every model when the config declares several (``models:``), else
        the only model's page."""
        from driftloop.ui.overview_page import render_models

        if not deployment().many:
            return model_page(request, None)
        rows = [row.to_dict() for row in deployment().summaries()]
        return HTMLResponse(render_models(rows, _root(request)))

    @app.get("/api/models")
    def models_json() -> list[dict[str, Any]]:
        return [row.to_dict() for row in deployment().summaries()]

    @app.get("/api/overview")
    def overview_json(request: Request) -> dict[str, Any]:
        from driftloop.ui.overview import overview

        return overview(*opened(None, f"{_root(request)}/models/<name>/api/overview"))

    @app.get("/reports/{kind}/{report_id}", response_class=FileResponse)
    def only_model_report(request: Request, kind: str, report_id: int) -> FileResponse:
        return report(request, None, kind, report_id)

    @app.get("/models/{name}/", response_class=HTMLResponse)
    def one_model_page(request: Request, name: str) -> HTMLResponse:
        return model_page(request, name)

    @app.get("/models/{name}/api/overview")
    def one_model_json(name: str) -> dict[str, Any]:
        from driftloop.ui.overview import overview

        return overview(*opened(name, ""))

    @app.get("/models/{name}/reports/{kind}/{report_id}", response_class=FileResponse)
    def one_model_report(request: Request, name: str, kind: str, report_id: int) -> FileResponse:
        return report(request, name, kind, report_id)

    @app.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    return app
