"""The Flask prediction server: ``create_app(...)`` builds it all; nothing starts at import.

It only wires: the shared objects (the models, prediction logs, secrets, metrics collector) into
``app.extensions["driftloop"]``, the request hooks (``serving.hooks``) and the blueprints
(``serving.blueprints``: predict, explain, feedback, inference, admin, operations), which hold
the routes.

One model or many (docs/serving.md, "Many models"): ``create_app(settings)`` serves one model,
loaded at start, as before; ``create_app(load_all())`` serves every model of the mapping,
each loaded on its first request (``serving.fleet``); a mapping of one model is served as one.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping

import sqlalchemy as sa
from flask import Flask

from driftloop.config import Settings
from driftloop.database import open_database
from driftloop.settings_loader import MODEL_ENV, load_all, load_settings
from driftloop.stages.spill import SPILL_FOLDER
from serving import hooks, json_codec
from serving.auth import Secrets
from serving.blueprints import BLUEPRINTS
from serving.context import Served
from serving.fleet import ModelFleet
from serving.metrics import LoopCollector
from serving.prediction_log import PredictionLog

# seconds the prediction log waits for a refusing database before it spills rows to files
SPILL_AFTER_ENV = "DRIFTLOOP_LOG_SPILL_AFTER_SECONDS"


def open_log(engine: sa.Engine, settings: Settings) -> PredictionLog:
    """The prediction log's writer process for one database (shared by its models)."""
    return PredictionLog(
        engine,
        retention_days=settings.serving.retention_days,
        spill_folder=settings.storage.home / SPILL_FOLDER,
        spill_after_seconds=float(os.environ.get(SPILL_AFTER_ENV, "30")),
    )


def declared_models() -> dict[str, Settings]:
    """What a server started without arguments serves: the model chosen by
    ``$DRIFTLOOP_MODEL__NAME`` if set, else every model the project's config declares."""
    if os.environ.get(MODEL_ENV):
        settings = load_settings()
        return {settings.model.name: settings}
    return load_all()


def create_app(
    settings: Settings | Mapping[str, Settings] | None = None, *, background: bool = True
) -> Flask:
    """Build the server for one model's ``settings``, or for a mapping of models by name (as
    :func:`driftloop.settings_loader.load_all` gives it); default: the project's config
    (:func:`declared_models`). ``background`` polls the registry for new versions and split
    changes."""
    if settings is None:
        models = declared_models()
    elif isinstance(settings, Settings):
        models = {settings.model.name: settings}
    else:
        models = dict(settings)
    fleet = ModelFleet(models, open_engine=open_database, open_log=open_log, background=background)
    server = fleet.server
    app = Flask(__name__, static_folder=None)
    app.json = json_codec.OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = server.serving.max_body_bytes
    served = Served(
        settings=server,
        fleet=fleet,
        secrets=Secrets.from_environment(server.serving.require_api_key),
        loop_metrics=LoopCollector(fleet),
        shutdown=fleet.close,
    )
    if fleet.single:  # loaded now, as a one-model server always was
        only = fleet.get(fleet.names[0])
        served.update(engine=only.engine, store=only.store, log=only.log)
    app.extensions["driftloop"] = served
    atexit.register(fleet.close)
    hooks.install(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
