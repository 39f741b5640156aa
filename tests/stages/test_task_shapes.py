"""Every task shape through bootstrap, retrain, gate and registration, on data that is not wine.

A generated classification set with text labels, a categorical feature and missing values (in a
numeric and in the categorical feature), and scikit-learn's bundled diabetes regression set, each
with real PyCaret (two fast models, three folds) and an embedded MLflow (SQLite and local files).
The classification run also waits for evidence: its first gate cannot decide (pending, no alias),
and a re-gate on the grown holdout, with no new training, sends the same version to Staging.
"""

from __future__ import annotations

import os
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from driftloop import registry
from driftloop.gate.statistics import CHEBYSHEV
from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import retrain as steps
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.gating import pending_versions, regate_pending
from driftloop.stages.ingest import ingest_landing
from driftloop.stages.retrain_steps import Skip
from driftloop.storage import RetrainRun, make_engine, session_scope

FAST = {"models": ["lr", "dt"], "budget_minutes": 0.5, "folds": 3}


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


def _project(tmp_path, frame: pd.DataFrame, config: dict):
    frame.to_csv(tmp_path / "data.csv", index=False)
    config["data"] = {"path": "data.csv", "separator": ",", **config["data"]}
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(tmp_path / "driftloop.yaml")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return settings, engine


def _with_training(settings, **values):
    return settings.model_copy(update={"training": settings.training.model_copy(update=values)})


def _retrain(settings, engine, drift_check_id, trigger="drift") -> steps.Decision:
    assembly = steps.assemble(settings, engine, drift_check_id, trigger)
    assert not isinstance(assembly, Skip), assembly
    trained = steps.train_and_log(settings, engine, assembly)
    registered = steps.register(settings, engine, steps.evaluate(settings, trained))
    return steps.gate(settings, engine, registered)


def _first_drift(settings, engine) -> int:
    while (outcome := check_next_batch(settings, engine, None, "1")) is not None:
        if outcome.drifted:
            return outcome.report_id
    raise AssertionError("the concept scenario never drifted")


def _assert_registry_follows(settings, decision: steps.Decision) -> None:
    """The version's alias and tags say what the decision says; Production is untouched."""
    client = registry.configure(settings)
    version = client.get_model_version(settings.model.name, decision.model_version)
    tag = {"staging": "staging", "rejected": "rejected", "insufficient_evidence": "pending"}
    assert version.tags[registry.GATE] == tag[decision.outcome]
    assert list(version.aliases) == (["staging"] if decision.outcome == "staging" else [])
    assert registry.current_version(settings) == "1"
    evidence = decision.evidence
    assert evidence is not None and evidence.rows > 0
    run = mlflow.get_run(decision.run_id)
    assert run.data.metrics["gate_rows"] == evidence.rows
    assert run.data.metrics["gate_attempt"] == evidence.attempt
    assert run.data.tags["driftloop.gate_test"] == evidence.test


def _grades(n: int, seed: int) -> pd.DataFrame:
    """Three text classes driven by two numbers and a colour; 8% of x2 and 5% of colour missing.
    ``x3`` plays no part until the concept shift moves it, and the labels with it."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(0, 1, n),
            "x2": rng.normal(0, 1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "x3": rng.normal(0, 1, n),
        }
    )
    score = (
        frame["x1"]
        + 0.7 * frame["x2"]
        + frame["colour"].map({"red": 1.0, "green": 0.0, "blue": -1.0})
        + rng.normal(0, 0.4, n)
    )
    frame["grade"] = pd.cut(score, [-np.inf, -0.7, 0.7, np.inf], labels=["low", "mid", "top"])
    frame["grade"] = frame["grade"].astype(str)
    frame.loc[rng.random(n) < 0.08, "x2"] = np.nan
    frame.loc[rng.random(n) < 0.05, "colour"] = np.nan
    return frame


@pytest.mark.timeout(900)
def test_classification_with_a_categorical_feature_and_missing_values(tmp_path, clean_env):
    settings, engine = _project(
        tmp_path,
        _grades(3000, seed=5),
        {
            "data": {
                "target": "grade",
                "task": "classification",
                "features": ["x1", "x2", "colour", "x3"],
                "categorical_features": ["colour"],
                "bounds": {},
            },
            "stream": {"batch_size": 250},
            "drift": {"drift_share": 0.25},  # one feature of four moves
            "model": {"name": "grades"},
            "training": {**FAST, "gate_retries": 2},
        },
    )
    assert steps.bootstrap(settings, engine).outcome == "production"
    # x3 moves and the labels rotate: Production, which ignores x3, is wrong on the new rows.
    written = replay(
        settings, "concept", n_batches=8, start_batch=3, strength=3.0, shift_features=("x3",)
    )
    later = tmp_path / "later"
    later.mkdir()
    for batch in written[5:]:  # these land after the first gate
        shutil.move(str(batch.path), later / batch.path.name)
    assert {o.status for o in ingest_landing(settings, engine)} == {"accepted"}
    report_id = _first_drift(settings, engine)

    # The first gate cannot decide (holdout below min_holdout): registered, pending, no alias.
    strict = _with_training(settings, min_holdout=10_000)
    first = _retrain(strict, engine, report_id)
    assert first.outcome == "insufficient_evidence", first
    assert "fewer than training.min_holdout (10000)" in first.reason
    _assert_registry_follows(settings, first)
    assert first.evidence.attempt == 1 and first.evidence.rows == 200  # 0.4 of 2 batches
    again = steps.assemble(settings, engine, report_id)
    assert "awaits more labelled rows for its gate" in again.reason
    assert regate_pending(settings, engine) == []  # no new labelled rows, no new attempt

    # A labelled batch lands: the same version is judged again on the grown holdout.
    shutil.move(str(later / written[5].path.name), settings.storage.home / "landing")
    ingest_landing(settings, engine)
    (second,) = regate_pending(settings, engine)
    assert (second.model_version, second.evidence.attempt) == (first.model_version, 2)
    assert second.evidence.rows > first.evidence.rows
    # Production is wrong on the shifted labels: the challenger is clearly better.
    assert second.outcome == "staging", second
    assert second.evidence.low > -settings.training.tolerance
    _assert_registry_follows(settings, second)
    assert pending_versions(registry.configure(settings), "grades") == []
    assert [v["version"] for v in registry.list_versions(settings)] == ["1", "2"]  # no training
    with session_scope(engine) as session:
        stored = session.scalars(
            sa.select(RetrainRun).where(RetrainRun.model_version == first.model_version)
        ).all()
        assert [(r.trigger, r.decision, r.gate_attempt) for r in stored] == [
            ("drift", "insufficient_evidence", 1),
            ("regate", "staging", 2),
        ]


@pytest.mark.timeout(900)
def test_regression_on_the_diabetes_data_set(tmp_path, clean_env):
    """442 rows: batches of 40, and a min_holdout that fits such a small set."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    settings, engine = _project(
        tmp_path,
        frame,
        {
            "data": {
                "target": "target",
                "task": "regression",
                "features": features,
                "bounds": {},
            },
            "stream": {"batch_size": 40},
            "model": {"name": "diabetes"},
            "training": {**FAST, "min_holdout": 30},
        },
    )
    assert steps.bootstrap(settings, engine).outcome == "production"
    # four of ten features move (drift.drift_share is 0.3), and the target with them
    shifted = ("bmi", "bp", "s4", "s5")
    replay(settings, "concept", start_batch=2, strength=2.0, shift_features=shifted)
    assert {o.status for o in ingest_landing(settings, engine)} == {"accepted"}
    report_id = _first_drift(settings, engine)
    decision = _retrain(settings, engine, report_id)
    assert decision.metric == "mae" and decision.evidence.test == CHEBYSHEV
    assert decision.evidence.rows >= 30
    _assert_registry_follows(settings, decision)
    run = mlflow.get_run(decision.run_id)
    assert run.data.params["task"] == "regression" and "holdout_mae" in run.data.metrics
