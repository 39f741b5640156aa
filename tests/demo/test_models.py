"""``driftloop demo --models N``: the config it writes from the demo's own, and its summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftloop.demo.declared import DIABETES_FEATURES, DIABETES_TARGET, MODELS, write_config
from driftloop.demo.models import ModelOutcome, ModelsLoopResult, summary_lines
from driftloop.ingestion.stream import split_reference
from driftloop.settings_loader import load_all, load_settings
from tests.conftest import ROOT


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DRIFTLOOP_CONFIG", "DRIFTLOOP_MODEL__NAME", "DRIFTLOOP_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIFTLOOP_STORAGE__HOME", str(tmp_path / "var"))
    return tmp_path


def test_three_models_keep_the_demos_settings_each_with_its_own_data(clean_env: Path) -> None:
    demo = load_settings(ROOT / "driftloop.demo.yaml")
    models = load_all(write_config(ROOT / "driftloop.demo.yaml", clean_env))
    assert list(models) == list(MODELS)
    white, red, diabetes = models.values()
    # white wine is make demo's model under another name: same data, training, A/B test
    assert white.data == demo.data and white.training == demo.training and white.ab == demo.ab
    assert red.data.path.name == "winequality-red.csv" and red.data.task == "classification"
    assert red.data.drift_source is None and red.training.models == ["lr"]
    assert (diabetes.data.task, diabetes.data.target) == ("regression", DIABETES_TARGET)
    assert tuple(diabetes.feature_columns) == DIABETES_FEATURES
    # the bundled set, written where the config says, in its original units (age in years)
    frame = pd.read_csv(diabetes.data.path)
    assert len(frame) == 442 and frame["age"].between(19, 79).all()
    reference, pool = split_reference(diabetes)
    assert len(pool) >= diabetes.stream.batch_size and len(reference) >= 200
    # each its own files, one serving section for all
    assert len({m.storage.home for m in models.values()}) == 3
    assert {m.serving.poll_seconds for m in models.values()} == {demo.serving.poll_seconds}


def test_fewer_models_are_the_first_ones(clean_env: Path) -> None:
    config = write_config(ROOT / "driftloop.demo.yaml", clean_env, MODELS[:2])
    assert list(load_all(config)) == ["white_wine", "red_wine"]
    assert not (clean_env / "data").exists()  # no diabetes set written for nothing


def test_the_summary_names_the_promoted_model_and_each_models_traffic() -> None:
    promoted = ModelOutcome(
        evaluations=[{"test_id": 1, "decision": "promote", "reason": "Staging wins"}],
        versions=[{"version": "2", "stage": "Production"}],
        traffic={"answered": {"production v1": 5, "staging v2": 4}, "failed": {}},
        after={"version": "2"},
    )
    kept = ModelOutcome(
        batches=[{"batch": "batch-0001.csv", "status": "no_drift"}],
        traffic={"answered": {"production v1": 7}, "failed": {}},
        after={"version": "1"},
    )
    result = ModelsLoopResult("white_wine", {"white_wine": promoted, "red_wine": kept})
    lines = summary_lines(result)
    assert result.promoted == ["white_wine"]
    assert "-- white_wine (drift planted)" in lines and "-- red_wine" in lines
    assert "  A/B test 1: promote: Staging wins" in lines
    assert "  A/B test: none" in lines
    assert "  traffic: 7 answered {'production v1': 7}, failed none" in lines
    assert any(line.startswith("promoted: white_wine;") for line in lines)
