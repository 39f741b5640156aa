from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from driftloop.settings_loader import ConfigError, load_settings
from tests.conftest import ROOT


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a variant of the project config and return its path."""
    for name in ("DRIFTLOOP_CONFIG", "DRIFTLOOP_STREAM__BATCH_SIZE", "DRIFTLOOP_STORAGE__HOME"):
        monkeypatch.delenv(name, raising=False)
    base = yaml.safe_load((ROOT / "driftloop.yaml").read_text())
    base["data"]["path"] = str(ROOT / base["data"]["path"])
    base["data"]["drift_source"] = str(ROOT / base["data"]["drift_source"])

    def write(change=None) -> Path:
        document = yaml.safe_load(yaml.safe_dump(base))
        if change:
            change(document)
        path = tmp_path / "driftloop.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    return write


def test_project_config_loads_with_absolute_paths():
    settings = load_settings(ROOT / "driftloop.yaml")
    assert settings.data.target == "quality"
    assert settings.data.task == "classification"
    assert len(settings.feature_columns) == 11
    assert "quality" not in settings.feature_columns
    assert settings.data.path == ROOT / "data/wine/winequality-white.csv"
    assert settings.storage.home.is_absolute()
    assert settings.database_url == f"sqlite:///{settings.storage.home / 'driftloop.db'}"


def test_environment_overrides_yaml(config_file, monkeypatch):
    path = config_file()
    monkeypatch.setenv("DRIFTLOOP_STREAM__BATCH_SIZE", "500")
    monkeypatch.setenv("DRIFTLOOP_MODEL__NAME", "wine-env")
    settings = load_settings(path)
    assert settings.stream.batch_size == 500
    assert settings.model.name == "wine-env"
    assert settings.stream.seed == 42  # untouched keys keep their YAML value


def test_config_path_from_environment(config_file, monkeypatch):
    path = config_file(lambda d: d["model"].update(name="from-env-file"))
    monkeypatch.setenv("DRIFTLOOP_CONFIG", str(path))
    assert load_settings().model.name == "from-env-file"


def test_features_default_to_every_column_but_target(config_file):
    def drop_features(document):
        del document["data"]["features"]
        document["data"]["bounds"] = {}

    settings = load_settings(config_file(drop_features))
    assert len(settings.feature_columns) == 11
    assert "quality" not in settings.feature_columns


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["stream"].update(batchsize=10),
            ["stream.batchsize", "unknown key", "batch_size"],
        ),
        (
            lambda d: d["stream"].update(batch_size=-5),
            ["stream.batch_size", "greater than 0", "-5"],
        ),
        (
            lambda d: d["data"].update(task="clustering"),
            ["data.task", "classification", "regression"],
        ),
        (lambda d: d.update(modle={"name": "x"}), ["modle", "unknown key", "model"]),
        (lambda d: d["stream"].update(reference_share=1.5), ["stream.reference_share", "1.5"]),
        (lambda d: d["data"].update(separator=";;"), ["data.separator", "single character"]),
        (lambda d: d["data"]["features"].append("quality"), ["data", "also listed in features"]),
        (
            lambda d: d["data"]["bounds"].update(pH={"min": 14, "max": 0}),
            ["data.bounds.pH", "greater than max"],
        ),
        (
            lambda d: d["data"]["bounds"].update(colour={"min": 0}),
            ["not features or target", "colour"],
        ),
        (lambda d: d["model"].update(name="bad name!"), ["model.name"]),
        (lambda d: d.pop("data"), ["data", "required key is missing"]),
        (
            lambda d: d.setdefault("ab", {}).update(metric="mae"),
            ["ab.metric mae does not fit a classification task", "accuracy"],
        ),
    ],
)
def test_bad_values_fail_naming_the_key(config_file, change, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file(change))
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, message


def test_bad_environment_value_names_the_variable(config_file, monkeypatch):
    path = config_file()
    monkeypatch.setenv("DRIFTLOOP_STREAM__BATCH_SIZE", "many")
    with pytest.raises(ConfigError, match=r"stream\.batch_size") as caught:
        load_settings(path)
    assert "DRIFTLOOP_STREAM__BATCH_SIZE" in str(caught.value)


def test_typo_in_environment_key_is_an_error(config_file, monkeypatch):
    path = config_file()
    monkeypatch.setenv("DRIFTLOOP_STREAM__BATCHSIZE", "10")
    with pytest.raises(ConfigError, match=r"stream\.batchsize"):
        load_settings(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_settings(path)


def test_cli_reports_bad_config_with_exit_code_2(config_file):
    path = config_file(lambda d: d["stream"].update(batch_size=0))
    done = subprocess.run(
        [str(ROOT / ".venv/bin/driftloop"), "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "stream.batch_size" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_demo_config_differs_only_where_it_says_demo():
    """driftloop.demo.yaml is driftloop.yaml plus demo settings, each marked "demo:"."""
    import yaml

    base = yaml.safe_load((ROOT / "driftloop.yaml").read_text())
    demo = yaml.safe_load((ROOT / "driftloop.demo.yaml").read_text())
    assert demo["data"] == base["data"] and demo["model"] == base["model"]
    changed = [
        (section, key)
        for section in base
        for key in base[section] or {}
        if (demo[section] or {}).get(key) != base[section][key]
    ]
    marked = [
        line.split(":")[0].strip()
        for line in (ROOT / "driftloop.demo.yaml").read_text().splitlines()
        if "# demo:" in line
    ]
    assert sorted(key for _, key in changed) == sorted(marked)
    load_settings(ROOT / "driftloop.demo.yaml")  # and it is a valid config
