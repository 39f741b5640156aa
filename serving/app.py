"""The Flask prediction server: ``create_app(settings)`` builds it all; nothing starts at import.

It only wires: the shared objects (model store, prediction log, secrets, metrics collector) into
``app.extensions["driftloop"]``, the request hooks (``serving.hooks``) and the blueprints
(``serving.blueprints``: predict, feedback, admin, operations), which hold the routes.
"""

from __future__ import annotations

import atexit
import os

from flask import Flask

from driftloop.config import Settings
from driftloop.database import open_database
from driftloop.settings_loader import load_settings
from driftloop.stages.spill import SPILL_FOLDER
from serving import hooks, json_codec
from serving.auth import Secrets
from serving.blueprints import BLUEPRINTS
from serving.context import Served
from serving.metrics import LoopCollector
from serving.models import ModelStore
from serving.prediction_log import PredictionLog

# seconds the prediction log waits for a refusing database before it spills rows to files
SPILL_AFTER_ENV = "DRIFTLOOP_LOG_SPILL_AFTER_SECONDS"


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """Build the server for ``settings`` (default: the project config); ``background`` polls
    the registry for new versions and split changes."""
    settings = settings or load_settings()
    engine = open_database(settings)
    store = ModelStore(settings, engine)
    store.refresh()
    if background:
        store.start_polling()
    log = PredictionLog(
        engine,
        retention_days=settings.serving.retention_days,
        spill_folder=settings.storage.home / SPILL_FOLDER,
        spill_after_seconds=float(os.environ.get(SPILL_AFTER_ENV, "30")),
    )

    def shutdown() -> None:
        store.close()
        log.close()

    app = Flask(__name__, static_folder=None)
    app.json = json_codec.OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.serving.max_body_bytes
    app.extensions["driftloop"] = Served(
        settings=settings,
        engine=engine,
        store=store,
        log=log,
        secrets=Secrets.from_environment(settings.serving.require_api_key),
        loop_metrics=LoopCollector(engine, settings.model.name, lambda: store.snapshot),
        shutdown=shutdown,
    )
    atexit.register(shutdown)
    hooks.install(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
