"""A deployment of three models in one configuration (issue 30): a ``models:`` map, versions
registered straight in each model's own embedded MLflow store (a tiny scikit-learn model, no
training) and loop rows in one SQLite database the models share, each in a different state.
For the tests of what shows every model at once: ``driftloop models`` and the plugin's page.

| model | Production | Staging | last drift verdict | A/B test |
| --- | --- | --- | --- | --- |
| ``white_wine`` | 1 | 2 | drift | running: Staging 2 vs Production 1 |
| ``red_wine`` | 1 | none | no_drift | promoted (ended) |
| ``white_alcohol`` | none | none | none yet | none |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

from driftloop import registry
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import role_moves
from driftloop.storage import ABTest, make_engine, session_scope
from driftloop.vocabulary import ABTestStatus
from tests.conftest import ROOT
from tests.support import loop_rows
from tests.support.registry_home import production_and_staging, register_versions

MODELS = ("white_wine", "red_wine", "white_alcohol")


@dataclass
class ManyModels:
    config: Path
    engine: sa.Engine
    white_drift_ids: list[int]  # white_wine's drift checks, oldest first
    white_test: int  # white_wine's running A/B test
    red_test: int  # red_wine's promoted one


def write_config(home: Path, database_url: str, **extra: dict) -> Path:
    """The three models' file: white wine's data by default, each model its own home below
    ``home/var``, one shared database; ``extra`` adds (or breaks) entries."""
    document = {
        "data": {
            "path": str(ROOT / "data/wine/winequality-white.csv"),
            "separator": ";",
            "target": "quality",
            "task": "classification",
        },
        "storage": {"home": str(home / "var")},
        "database": {"url": database_url},
        "models": {
            "white_wine": {},
            "red_wine": {"data": {"path": str(ROOT / "data/wine/winequality-red.csv")}},
            "white_alcohol": {"data": {"target": "alcohol", "task": "regression"}},
            **extra,
        },
    }
    config = home / "driftloop.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def many_models(home: Path) -> ManyModels:
    """The deployment in the table above, under ``home``. The caller clears ``DRIFTLOOP_*``
    from the environment first (an override would apply to every model)."""
    assert not any(name.startswith("DRIFTLOOP_MODEL") for name in os.environ)
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{home / 'driftloop.db'}"
    config = write_config(home, url)
    engine = make_engine(url)
    upgrade(engine)
    white = load_settings(config, model="white_wine")
    production_and_staging(white)
    red = load_settings(config, model="red_wine")
    (version,) = register_versions(red, 1)
    role_moves.set_role(registry.configure(red), "red_wine", version, registry.PRODUCTION)
    white_drift = loop_rows.drift_checks(engine, "white_wine", home / "reports", [0.1, 0.7])
    loop_rows.drift_checks(engine, "red_wine", home / "reports-red", [0.2])
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        tests = [
            ABTest(
                model_name="red_wine",
                production_version="0",
                staging_version="1",
                status=ABTestStatus.PROMOTED,
                started_at=now - timedelta(days=2),
                ended_at=now - timedelta(days=1),
                reason="Staging won",
            ),
            ABTest(
                model_name="white_wine",
                production_version="1",
                staging_version="2",
                status=ABTestStatus.RUNNING,
                started_at=now - timedelta(hours=1),
            ),
        ]
        session.add_all(tests)
        session.flush()
        red_test, white_test = (test.id for test in tests)
    return ManyModels(config, engine, white_drift, white_test, red_test)
