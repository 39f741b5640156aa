"""Many models in one configuration (issue 30, item 1): a ``models:`` map whose entries inherit
the rest of the file, each validated as a whole model, every error naming its model; a file
without ``models:`` is one model, exactly as before."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from driftloop.settings_loader import ConfigError, load_all, load_settings
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples/three_models.yaml"
DRIFTLOOP = str(ROOT / ".venv/bin/driftloop")


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRIFTLOOP_CONFIG", "DRIFTLOOP_MODEL__NAME", "DRIFTLOOP_STORAGE__HOME"):
        monkeypatch.delenv(name, raising=False)


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "driftloop.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _project(**models: dict | None) -> dict:
    """A small many-model project on the wine files, with ``models``."""
    return {
        "data": {
            "path": str(ROOT / "data/wine/winequality-white.csv"),
            "separator": ";",
            "target": "quality",
            "task": "classification",
        },
        "storage": {"home": "var"},
        "drift": {"false_alarm_rate": 0.01},
        "models": models,
    }


def test_the_example_declares_three_models_that_inherit_and_override() -> None:
    models = load_all(EXAMPLE)
    assert list(models) == ["white_wine", "red_wine", "white_alcohol"]
    white, red, alcohol = models.values()
    # the name is the key, and each model has its own folder below the project's home
    assert [m.model.name for m in models.values()] == list(models)
    assert white.storage.home == (ROOT / "var/models/white_wine").resolve()
    assert len({m.storage.home for m in models.values()}) == 3
    assert len({m.database_url for m in models.values()}) == 3
    # inherited as written in the file's sections, overridden where the entry says
    assert white.drift.false_alarm_rate == 0.01 and red.drift.false_alarm_rate == 0.005
    assert red.drift.calibration_draws == 2000 and white.drift.calibration_draws == 1000
    assert red.data.path == ROOT / "data/wine/winequality-red.csv"
    assert red.data.separator == ";" and red.data.target == "quality"  # merged key by key
    assert alcohol.data.task == "regression" and alcohol.data.target == "alcohol"
    assert "alcohol" not in alcohol.feature_columns and "quality" in alcohol.feature_columns
    assert alcohol.training.models == ["lr", "rf"] and white.training.models == ["lr", "dt"]
    # one model at a time, as every entry point loads it
    assert load_settings(EXAMPLE, model="red_wine") == red


def test_a_single_model_file_is_one_model_unchanged() -> None:
    config = ROOT / "driftloop.yaml"
    models = load_all(config)
    settings = load_settings(config)
    assert models == {settings.model.name: settings}
    assert load_settings(config, model=settings.model.name) == settings
    with pytest.raises(ConfigError, match="configures one model, 'wine-quality', not 'other'"):
        load_settings(config, model="other")


def test_choosing_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path, _project(churn={}, fraud={}))
    with pytest.raises(ConfigError, match=r"declares 2 models \(churn, fraud\): choose one"):
        load_settings(config)
    with pytest.raises(ConfigError, match=r"no model 'frau'.*did you mean 'fraud'"):
        load_settings(config, model="frau")
    monkeypatch.setenv("DRIFTLOOP_MODEL__NAME", "fraud")
    assert load_settings(config).model.name == "fraud"
    # the environment's home is the project's: each model still gets a folder of its own
    monkeypatch.setenv("DRIFTLOOP_STORAGE__HOME", str(tmp_path / "home"))
    assert load_settings(config).storage.home == tmp_path / "home/fraud"
    only = _write(tmp_path, _project(solo=None))
    monkeypatch.delenv("DRIFTLOOP_MODEL__NAME")
    assert load_settings(only).model.name == "solo"


def test_every_error_names_its_model_and_all_come_at_once(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        _project(
            good={},
            churn={"drift": {"false_alarm_rate": 2}},
            fraud={"data": {"target": None}, "trainig": {"folds": 3}},
        ),
    )
    with pytest.raises(ConfigError) as raised:
        load_all(config)
    message = str(raised.value)
    assert "invalid configuration of model 'churn'" in message
    assert "[churn] drift.false_alarm_rate" in message
    assert "[fraud] trainig: unknown key; did you mean 'training'?" in message
    assert "[fraud] data.target" in message
    assert "good" not in message  # a sound model is not blamed
    # the model that is sound still loads on its own
    assert load_settings(config, model="good").model.name == "good"


@pytest.mark.parametrize(
    ("document", "sentence"),
    [
        ({"models": []}, "models must map each model's name to its own sections"),
        ({"models": {"a b": {}}}, "'a b' is not a model name"),
        ({"models": {"churn": [1]}}, r"models.churn must be a mapping of sections"),
        ({"model": {"name": "x"}, "models": {"churn": {}}}, "remove model.name"),
        ({"models": {"churn": {"model": {"name": "fraud"}}}}, "a model's name is its key"),
    ],
)
def test_malformed_models_maps_are_refused_with_a_sentence(
    tmp_path: Path, document: dict, sentence: str
) -> None:
    project = _project() | document
    with pytest.raises(ConfigError, match=sentence):
        load_all(_write(tmp_path, project))


def test_models_may_share_a_database_but_not_a_home(tmp_path: Path) -> None:
    """Every row carries its model's name (migration 0016), so one database serves them all;
    a storage home would mix their files."""
    shared = _project(churn={}, fraud={})
    shared["database"] = {"url": "postgresql://127.0.0.1/driftloop"}
    loaded = load_all(_write(tmp_path, shared))
    assert {s.database_url for s in loaded.values()} == {"postgresql://127.0.0.1/driftloop"}
    assert len({s.storage.home for s in loaded.values()}) == 2
    same_home = _project(churn={"storage": {"home": "x"}}, fraud={"storage": {"home": "x"}})
    with pytest.raises(ConfigError, match=r"share the storage\.home"):
        load_all(_write(tmp_path, same_home))


def _config_check(config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIFTLOOP, "--config", str(config), "config", "check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        timeout=120,
    )


def test_config_check_names_each_model(tmp_path: Path) -> None:
    done = _config_check(EXAMPLE, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        "model white_wine",
        "model red_wine",
        "model white_alcohol",
    ]
    broken = _write(tmp_path, _project(churn={}, fraud={"drift": {"drift_share": 7}}))
    done = _config_check(broken, tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "[fraud] drift.drift_share" in done.stderr
