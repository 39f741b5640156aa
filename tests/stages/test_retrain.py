"""Retraining: bootstrap, the steps behind the `retrain` DAG, the gate and its safety rules.

Real PyCaret and a real (embedded: SQLite and local files) MLflow, with small model lists and
budgets so each training takes seconds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from driftloop import registry
from driftloop.gate.statistics import GateOutcome, GateResult
from driftloop.ingestion.stream import replay
from driftloop.performance.reference import load_reference
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import retrain as steps
from driftloop.stages import role_moves
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing
from driftloop.stages.reference_profiles import resolve_profile
from driftloop.stages.retrain_steps import Registered, Scored, Skip, Trained
from driftloop.stages.training_data import split_holdout
from driftloop.storage import RetrainRun, make_engine, session_scope
from driftloop.vocabulary import RetrainDecision, Trigger
from tests.conftest import ROOT
from tests.support.airflow_dags import dag_test, drifted

FAST = {"models": ["dt", "lr"], "budget_minutes": 0.5, "folds": 3}


@pytest.fixture
def fast(tmp_path, monkeypatch):
    """Settings with a fast model list and an engine on a migrated SQLite database."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}, training=FAST
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return settings, engine


def _run_steps(settings, engine, drift_check_id):
    """Every step in one process, as ``driftloop retrain`` runs them."""
    decision, trained = steps.retrain(settings, engine, drift_check_id, Trigger.DRIFT)
    assert trained is not None, decision  # not skipped
    return decision


def test_bootstrap_registers_production_with_its_profile(fast):
    settings, engine = fast
    decision = steps.bootstrap(settings, engine)
    assert decision.outcome == "production" and decision.model_version == "1"
    client = registry.configure(settings)
    version = client.get_model_version_by_alias(settings.model.name, "production")
    assert version.current_stage == "Production" and version.tags[registry.GATE] == "production"
    record, profile = resolve_profile(settings, engine, "1")
    assert record.kind == "model" and record.model_version == "1"
    assert profile.target == "quality" and profile.rows == 1469  # the initial reference split
    assert version.tags[registry.PROFILE_ID] == str(record.id)
    # out of sample: cross-validated over the reference split (no gate holdout at bootstrap)
    reference = load_reference(settings, engine, "1")
    assert reference.source == "cross-validation" and 1440 < reference.rows <= 1469  # no rare class
    assert reference.probabilities is not None and len(reference.classes) >= 5
    explained = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/explanations/global_shap.json")
    assert explained["quality"] == "exact" and set(explained["mean_abs_shap"]) == set(
        settings.feature_columns
    )
    with pytest.raises(steps.RetrainError, match="already has Production version 1"):
        steps.bootstrap(settings, engine)


def test_retrain_without_production_says_there_is_nothing_to_compare_with(fast):
    settings, engine = fast
    assembly = steps.assemble(settings, engine)
    assert assembly.decision.outcome == "skipped"
    assert "nothing to compare with" in assembly.reason and "driftloop bootstrap" in assembly.reason


def _counted(monkeypatch, module, name: str) -> list[tuple]:
    """Wrap the real ``module.name`` so each call is recorded, then passed on."""
    calls: list[tuple] = []
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_drift_retrain_goes_to_staging_then_later_drift_is_skipped(fast, monkeypatch):
    settings, engine = fast
    steps.bootstrap(settings, engine)
    report_id = drifted(settings, engine)
    # as in a new `driftloop retrain` process: nothing configured yet; five steps ask for the
    # registry (assemble, train, evaluate, register, gate), MLflow is configured once
    monkeypatch.setattr(registry, "_configured", None)
    configured = _counted(monkeypatch, registry, "_configure")
    pointed = _counted(monkeypatch, mlflow, "set_tracking_uri")
    decision = _run_steps(settings, engine, report_id)
    assert (len(configured), len(pointed)) == (1, 1)
    assert decision.outcome == "staging", decision
    assert decision.challenger_score > decision.production_score
    # non-inferiority: the whole interval of the paired difference clears the margin
    assert decision.evidence.low > -settings.training.tolerance
    client = registry.configure(settings)
    staging = client.get_model_version_by_alias(settings.model.name, "staging")
    assert (
        str(staging.version) == decision.model_version == "2" and staging.current_stage == "Staging"
    )
    assert staging.tags[registry.DRIFT_REPORT] == str(report_id)
    assert str(client.get_model_version_by_alias(settings.model.name, "production").version) == "1"
    # the challenger's decay reference is cross-validated on its training rows, never the
    # gate holdout that selected it (the winner's curse, issue 27)
    reference = load_reference(settings, engine, "2")
    assert reference.source == "cross-validation" and reference.rows > decision.evidence.rows
    # its drift reference is the window since the drift (gate holdout included), not its
    # training set, which mixes Production's old rows in (no retrain storm, issue 26)
    _record, profile = resolve_profile(settings, engine, "2")
    since = f"{profile.rows} rows of the window since drift check {report_id}"
    assert profile.source.startswith(since), profile.source
    assert decision.evidence.rows < profile.rows < 1469

    again = steps.assemble(settings, engine, report_id)  # one challenger at a time
    assert "Staging version 2 is still under A/B test" in again.reason


def test_a_weaker_challenger_is_rejected_and_production_untouched(fast):
    settings, engine = fast
    steps.bootstrap(settings, engine)
    report_id = drifted(settings, engine)
    weak = settings.model_copy(
        update={"training": settings.training.model_copy(update={"models": ["dummy"]})}
    )
    decision = _run_steps(weak, engine, report_id)
    assert decision.outcome == "rejected", decision
    # shown worse beyond the margin: the whole interval lies below it
    assert decision.evidence.high < -settings.training.tolerance
    client = registry.configure(settings)
    rejected = client.get_model_version(settings.model.name, decision.model_version)
    assert (
        rejected.tags[registry.GATE] == "rejected"
        and "worse than Production" in rejected.tags[registry.GATE_REASON]
    )
    assert not rejected.aliases and rejected.current_stage == "None"
    assert str(client.get_model_version_by_alias(settings.model.name, "production").version) == "1"
    assert registry.by_alias(client, settings.model.name, "staging") is None


def test_failed_training_leaves_the_registry_as_it_was_and_same_data_is_not_registered_twice(fast):
    settings, engine = fast
    steps.bootstrap(settings, engine)
    report_id = drifted(settings, engine)
    broken = settings.model_copy(
        update={"training": settings.training.model_copy(update={"models": ["no-such-model"]})}
    )
    assembly = steps.assemble(broken, engine, report_id)
    with pytest.raises(ValueError, match="Estimator no-such-model Not Available"):  # PyCaret's
        steps.train_and_log(broken, engine, assembly)
    assert [v["version"] for v in registry.list_versions(settings)] == ["1"]

    trained = steps.train_and_log(settings, engine, assembly)
    evaluated = steps.evaluate(settings, trained)
    first = steps.register(settings, engine, evaluated)
    assert steps.register(settings, engine, evaluated).version == first.version  # a retry
    assert len(registry.list_versions(settings)) == 2


def test_a_regression_data_set_goes_through_unchanged_code(tmp_path, monkeypatch):
    """Another CSV (comma-separated, a categorical feature, a continuous target) only needs a
    config."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    rng = np.random.default_rng(11)
    n = 3000
    frame = pd.DataFrame(
        {
            "size": rng.gamma(3, 40, n),
            "rooms": rng.integers(1, 7, n).astype(float),
            "age": rng.uniform(0, 80, n),
            "district": rng.choice(["north", "south", "east"], n),
        }
    )
    frame["price"] = (
        2.5 * frame["size"]
        + 15 * frame["rooms"]
        - 0.8 * frame["age"]
        + frame["district"].map({"north": 40, "south": 0, "east": 15})
        + rng.normal(0, 10, n)
    )
    frame.to_csv(tmp_path / "houses.csv", index=False)
    config = {
        "data": {
            "path": "houses.csv",
            "separator": ",",
            "target": "price",
            "task": "regression",
            "features": ["size", "rooms", "age", "district"],
            "categorical_features": ["district"],
            "bounds": {"size": {"min": 0}, "age": {"min": 0}},
        },
        "stream": {"batch_size": 200},
        "model": {"name": "houses"},
        "training": {"models": ["lr", "dt"], "budget_minutes": 0.5, "folds": 3},
    }
    (tmp_path / "houses.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(tmp_path / "houses.yaml")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    assert steps.bootstrap(settings, engine).outcome == "production"
    replay(
        settings,
        "concept",
        n_batches=8,
        start_batch=3,
        strength=2.0,
        shift_features=("size", "age"),
    )
    assert {o.status for o in ingest_landing(settings, engine)} == {"accepted"}
    report_id = None
    while (outcome := check_next_batch(settings, engine, None, "1")) is not None:
        report_id = report_id or (outcome.report_id if outcome.drifted else None)
    assert report_id is not None
    decision = _run_steps(settings, engine, report_id)
    assert decision.metric == "mae" and decision.outcome in {"staging", "rejected"}
    run = mlflow.get_run(decision.run_id)
    assert "holdout_mae" in run.data.metrics and run.data.params["task"] == "regression"


@pytest.mark.timeout(600)
def test_retrain_dag_registers_a_staging_version_with_lineage(airflow_env, fast):
    settings, engine = fast
    steps.bootstrap(settings, engine)
    report_id = drifted(settings, engine)
    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
        "DRIFTLOOP_TRAINING__MODELS": json.dumps(FAST["models"]),
        "DRIFTLOOP_TRAINING__BUDGET_MINUTES": str(FAST["budget_minutes"]),
        "DRIFTLOOP_TRAINING__FOLDS": str(FAST["folds"]),
    }
    result = dag_test(env, "retrain", {"drift_check_id": report_id})
    assert result["state"] == "success", result
    assert all(state == "success" for state in result["tasks"].values()), result["tasks"]

    client = registry.configure(settings)
    staging = client.get_model_version_by_alias(settings.model.name, "staging")
    assert staging.current_stage == "Staging"
    assert {
        registry.DATA_DIGEST,
        registry.DRIFT_REPORT,
        registry.DRIFT_BATCH,
        registry.PROFILE_ID,
    } <= set(staging.tags)
    run = client.get_run(staging.run_id)
    assert {"cv_accuracy", "holdout_accuracy", "training_rows"} <= set(run.data.metrics)
    assert run.data.params["best_model"]
    artifacts = {a.path for a in client.list_artifacts(staging.run_id)} | {
        a.path
        for folder in ("plots", "profile", "training_data")
        for a in client.list_artifacts(staging.run_id, folder)
    }
    assert {
        "compare_models.csv",
        "plots/confusion_matrix.png",
        "plots/feature_importance.png",
        "profile/profile.npz",
        "training_data/train.csv",
    } <= artifacts
    model = mlflow.pyfunc.load_model(f"models:/{settings.model.name}@staging")
    assert model.metadata.signature.inputs.input_names() == settings.feature_columns
    assert Path(resolve_profile(settings, engine, staging.version)[0].path).is_file()


@pytest.mark.parametrize("integer_batches", [False, True], ids=["as-read", "int-typed-batches"])
def test_the_gate_holdout_is_the_newest_rows_since_the_drift_and_never_trained_on(
    fast, integer_batches
):
    """Three batches (one before the drift); Production's data holds an exact copy of a row
    of the newest batch. The holdout is the newest holdout_share of the rows since the drift;
    the training set has every other row and no copy of a holdout row, also when the batches'
    CSV typed a column as integers that Production's data holds as floats."""
    settings, _ = fast
    columns = [*settings.feature_columns, settings.data.target]
    wine = pd.read_csv(ROOT / settings.data.path, sep=";")[columns].drop_duplicates()
    rows = wine.head(50).reset_index(drop=True)
    if integer_batches:  # whole-number values, as a batch file without decimals is read
        rows["free sulfur dioxide"] = rows["free sulfur dioxide"].round()
    day = pd.Timestamp("2026-01-01", tz="UTC")
    batches = [rows.iloc[10 * b : 10 * b + 10] for b in range(3)]
    if integer_batches:
        batches = [b.astype({"free sulfur dioxide": "int64"}) for b in batches]
    recent = pd.concat(
        [batch.assign(_batch_time=day + pd.Timedelta(days=b)) for b, batch in enumerate(batches)],
        ignore_index=True,
    )
    # Production's data: rows 30-49 and a copy of row 29, which is in the newest batch
    base = rows.iloc[[*range(30, 50), 29]].astype({"free sulfur dioxide": "float64"})
    drift_time = day + pd.Timedelta(days=1)
    train, holdout = split_holdout(recent, base, drift_time, settings)

    since = recent[recent["_batch_time"] >= drift_time]
    n = math.ceil(settings.training.holdout_share * len(since))  # 0.4 of 20 rows: 8
    assert 1 <= n < len(since)  # a holdout, and rows since the drift left to train on
    pd.testing.assert_frame_equal(
        holdout, since.tail(n)[columns].reset_index(drop=True), check_dtype=False
    )

    def keys(frame: pd.DataFrame) -> set[tuple]:
        return set(map(tuple, frame[columns].astype(float).to_numpy()))

    assert not keys(train) & keys(holdout)  # the copy from Production's data is gone too
    # the 30 recent rows less the holdout (the newest n), plus Production's 20 without the copy
    assert keys(train) == keys(rows.iloc[: 30 - n]) | keys(rows.iloc[30:50])
    assert len(train) == (30 - n) + 20


def test_the_skip_rules_the_readme_lists(fast):
    """No labelled batches; a version already trained on the same data; the cooldown; a
    Staging version under test unless training.replace_staging, whose gate then archives it.
    Each skip is recorded with its reason; the assembled holdout never reaches training."""
    settings, engine = fast
    steps.bootstrap(settings, engine)
    name = settings.model.name
    client = registry.configure(settings)

    def assemble(report_id=None, **training):
        changed = settings.model_copy(
            update={"training": settings.training.model_copy(update=training)}
        )
        return steps.assemble(changed, engine, report_id)

    assert assemble().reason == "no accepted, labelled batches to learn from"
    report_id = drifted(settings, engine)
    assembly = assemble(report_id)
    assert not isinstance(assembly, Skip), assembly
    train, holdout = pd.read_csv(assembly.train_path), pd.read_csv(assembly.holdout_path)
    assert len(holdout) and not set(map(tuple, holdout.to_numpy())) & set(
        map(tuple, train.to_numpy())
    )

    source = client.get_model_version(name, "1")
    twin = client.create_model_version(
        name, source.source, run_id=source.run_id, tags={registry.DATA_DIGEST: assembly.digest}
    )
    assert assemble(report_id).reason == (
        f"version {twin.version} was trained on exactly this data"
    )
    client.delete_model_version(name, twin.version)

    steps.record(
        engine,
        name,
        steps.Decision(RetrainDecision.REJECTED, "a retrain just now"),
        "drift",
        report_id,
    )
    assert assemble(report_id, cooldown_minutes=60).reason == (
        "the last retrain was less than 60 minutes ago (training.cooldown_minutes)"
    )
    assert not isinstance(assemble(report_id, cooldown_minutes=0), Skip)

    staged = str(client.create_model_version(name, source.source, run_id=source.run_id).version)
    role_moves.set_role(client, name, staged, registry.STAGING)
    assert assemble(report_id).reason == (
        f"Staging version {staged} is still under A/B test (training.replace_staging is false)"
    )
    replacing = assemble(report_id, replace_staging=True)
    assert not isinstance(replacing, Skip)
    newer = str(client.create_model_version(name, source.source, run_id=source.run_id).version)
    passed = GateResult(
        GateOutcome.STAGING,
        "passed",
        "accuracy",
        "test",
        300,
        0.6,
        0.5,
        0.1,
        0.05,
        0.15,
        0.02,
        0.05,
        1,
    )
    trained = Trained(replacing, source.run_id, source.source, "Accuracy", None, None, None)
    decision = steps.gate(settings, engine, Registered(Scored(trained, passed), newer))
    assert decision.outcome == "staging"
    assert registry.by_alias(client, name, registry.STAGING).version == newer
    old = client.get_model_version(name, staged)
    assert old.current_stage == "Archived" and not old.aliases
    with session_scope(engine) as session:
        skipped = session.scalars(
            sa.select(RetrainRun.reason).where(RetrainRun.decision == RetrainDecision.SKIPPED)
        ).all()
    assert len(skipped) == 4  # no batches, same data, cooldown, Staging under test


def test_a_step_says_so_when_the_mlflow_server_does_not_answer(tmp_path, monkeypatch):
    """Before a retrain step touches the registry: one sentence, and nothing half-done (the
    fault test with a real server: tests/faults/test_airflow_faults.py)."""
    from driftloop.stack.processes import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path}, mlflow={"tracking_uri": url}
    )
    with pytest.raises(registry.RegistryUnavailable, match=f"the MLflow server at {url} does not"):
        registry.configure(settings)
