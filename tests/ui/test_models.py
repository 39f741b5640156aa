"""Every model of a deployment at a glance (``driftloop.ui.models``): one row per model from the
reads of the per-model page, a broken model costing its own row only."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.schema import upgrade
from driftloop.settings_loader import ConfigError
from driftloop.storage import make_engine
from driftloop.ui.models import UnknownModel, load_deployment
from driftloop.ui.overview import overview
from tests.conftest import ROOT, clear_driftloop_env
from tests.support.many_models import ManyModels, write_config


def test_one_row_per_model_agrees_with_each_models_page(models_config: ManyModels):
    deployment = load_deployment(models_config.config)
    try:
        assert deployment.many and deployment.names == ["white_wine", "red_wine", "white_alcohol"]
        rows = deployment.summaries()
        assert [(r.model, r.production, r.staging, r.error) for r in rows] == [
            ("white_wine", "1", "2", None),
            ("red_wine", "1", None, None),
            ("white_alcohol", None, None, None),
        ]
        white, red, alcohol = rows
        page = overview(deployment.settings("white_wine"), models_config.engine)
        assert white.drift == page["drift"]["checks"][0]  # the page's newest check, the same
        assert white.drift["status"] == "drift" and red.drift["status"] == "no_drift"
        assert white.ab["id"] == page["ab"]["id"] == models_config.white_test
        assert (white.ab["status"], white.ab["staging_version"]) == ("running", "2")
        assert (red.ab["id"], red.ab["status"]) == (models_config.red_test, "promoted")
        assert alcohol.drift is None and alcohol.ab is None
        # the models share one database: one engine for all of them
        engines = {id(deployment.engine(deployment.settings(name))) for name in deployment.names}
        assert len(engines) == 1
        with pytest.raises(UnknownModel, match="so a model must be named"):
            deployment.settings()
        with pytest.raises(UnknownModel, match="no model 'white'"):
            deployment.settings("white")
    finally:
        deployment.close()


def test_a_broken_model_costs_its_row_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clear_driftloop_env(monkeypatch)
    url = f"sqlite:///{tmp_path / 'driftloop.db'}"
    config = write_config(tmp_path, url, fraud={"drift": {"false_alarm_rate": 2}})
    upgrade(make_engine(url))
    deployment = load_deployment(config)
    rows = {row.model: row for row in deployment.summaries()}
    deployment.close()
    assert list(rows) == ["white_wine", "red_wine", "white_alcohol", "fraud"]
    assert "[fraud] drift.false_alarm_rate" in rows["fraud"].error
    assert [name for name, row in rows.items() if row.error] == ["fraud"]
    with pytest.raises(ConfigError, match="of model 'fraud'"):
        deployment.settings("fraud")


def test_a_file_of_one_model_is_one_row(monkeypatch: pytest.MonkeyPatch):
    clear_driftloop_env(monkeypatch)
    deployment = load_deployment(ROOT / "driftloop.yaml")
    assert not deployment.many and deployment.names == ["wine-quality"]
    assert deployment.settings().model.name == "wine-quality"
