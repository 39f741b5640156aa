"""A driftloop home with a real model in Production and a second version in Staging, for the
serving tests (one bootstrap, PyCaret with a fast model list, embedded MLflow)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import retrain as steps
from driftloop.stages import role_moves
from driftloop.storage import make_engine
from tests.conftest import ROOT


@contextmanager
def production_and_staging(
    home: Path, database_url: str | None = None
) -> Iterator[tuple[Settings, sa.Engine]]:
    """Version 1 bootstrapped into Production; a copy of it registered as version 2 (Staging).
    driftloop's tables in ``database_url`` (PostgreSQL, for replicas), else SQLite in ``home``."""
    saved = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("DRIFTLOOP_") and k != "DRIFTLOOP_TEST_POSTGRES_URL"
    }
    try:
        settings = load_settings(
            ROOT / "driftloop.yaml",
            storage={"home": home},
            database={"url": database_url},
            training={"models": ["dt"], "folds": 2, "budget_minutes": 0.5},
        )
        engine = make_engine(settings.database_url)
        upgrade(engine)
        steps.bootstrap(settings, engine)
        client = registry.configure(settings)
        source = client.get_model_version(settings.model.name, "1")
        second = client.create_model_version(
            settings.model.name, source.source, run_id=source.run_id
        )
        role_moves.set_role(client, settings.model.name, str(second.version), registry.STAGING)
        yield settings, engine
        engine.dispose()
    finally:
        os.environ.update(saved)
