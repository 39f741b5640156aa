"""driftloop inside Airflow: a page in Airflow's navigation and the FastAPI app behind it.

Airflow imports plugins in every component (scheduler, dag-processor, triggerer, workers), so
this file imports nothing heavy: the app is built on its first request, in the api-server, by
``driftloop_ui.app.create_app``; the logic lives in ``driftloop.ui.overview`` and
``driftloop.ui.overview_page``. The app answers under ``/driftloop`` and authenticates through
Airflow's auth manager (the same JWT cookie the UI uses, or a bearer token).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/driftloop"


class LazyApp:
    """An ASGI app that builds the real one when the first request arrives."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            from driftloop_ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class DriftloopPlugin(AirflowPlugin):
    name = "driftloop"
    fastapi_apps = [  # noqa: RUF012 (Airflow reads these class attributes)
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "driftloop"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "driftloop",
            "href": f"{URL_PREFIX}/",
            "url_route": "driftloop",
            "destination": "nav",
            "icon": f"{URL_PREFIX}/icon.svg",
        }
    ]
