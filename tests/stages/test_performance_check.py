"""Performance monitoring as the loop stores it: a checked batch is predicted by Production
(timed apart from the drift check), its realized metrics leave out rows the version trained on
and are judged against its out-of-sample reference, late labels join on data.id_column, a day
gathers batches and /feedback, a decay is announced once, and the gauges show it all."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from driftloop.performance.rows import predictions_path
from driftloop.schema import upgrade
from driftloop.settings_loader import ConfigError, load_settings
from driftloop.stages.batch_labels import label_batch
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import IngestError, ingest_landing
from driftloop.stages.performance_check import check_day, take_decay
from driftloop.storage import PerformanceCheck, make_engine
from driftloop.ui.gauges import loop_gauges
from tests.conftest import ROOT
from tests.support.performance import (
    FEATURES,
    land,
    register_production,
    synthetic,
    synthetic_settings,
)


@pytest.fixture
def monitored(tmp_path):
    """A Production version of the synthetic problem with its reference; batches carry ids."""
    settings = synthetic_settings(
        tmp_path / "home",
        data={"id_column": "row_id"},
        drift={"calibration_draws": 400, "false_alarm_rate": 0.05},
        monitoring={"alpha": 0.01, "min_drop": 0.03},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    train = synthetic(np.random.default_rng(1), 1500)
    version = register_production(settings, engine, train)
    return settings, engine, version, train


def _batch(rng, n, start, **shape):
    frame = synthetic(rng, n, **shape)
    frame.insert(0, "row_id", [f"r{start + i}" for i in range(n)])
    return frame


def test_a_labelled_batch_is_measured_judged_and_reported(monitored):
    settings, engine, version, train = monitored
    rng = np.random.default_rng(2)
    batch = _batch(rng, 300, 0)
    # 40 rows the version trained on: left out of its realized metrics
    batch.iloc[:40, 1:] = train.iloc[:40].to_numpy()
    land(settings, batch, hour=1)
    ingest_landing(settings, engine)
    outcome = check_next_batch(settings, engine, production_version=version)
    performance = outcome.performance
    assert performance["inference_seconds"] > 0 and "error" not in performance
    realized = performance["realized"]
    assert realized["rows"] == 260 and realized["excluded_rows"] == 40
    accuracy = realized["metrics"]["accuracy"]
    assert 0.0 <= accuracy["low"] <= accuracy["value"] <= accuracy["high"] <= 1.0
    assert realized["metrics"]["f1"]["value"] is not None
    assert realized["test"]["test"] == "Fisher's exact test" and not realized["decayed"]
    assert performance["estimated"] and not performance["estimated"]["dropped"]
    assert performance["prediction_drift"]["drifted"] is False
    attribution = performance["attribution_drift"]  # SHAP per feature, holdout -> batch
    assert set(attribution) == set(FEATURES)
    assert max(attribution, key=lambda f: attribution[f]["current"]) == "signal"
    assert abs(attribution["signal"]["change"]) < 0.5 * attribution["signal"]["reference"]
    report = json.loads(Path(outcome.html_path).with_suffix(".json").read_text())
    assert report["performance"]["realized"]["rows"] == 260
    assert report["drift check seconds"] > 0
    page = Path(outcome.html_path).read_text()
    assert "Model performance (Production v" in page and "estimated before labels" in page
    assert "attribution drift" in page
    assert take_decay(settings, engine) is None


def test_a_decay_is_announced_once_and_shown_on_metrics(monitored, receiver):
    settings, engine, version, _ = monitored
    url, received = receiver  # the alerts' real path: a webhook in this process
    settings = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"webhook_url": url})}
    )
    rng = np.random.default_rng(3)
    land(settings, _batch(rng, 300, 0), hour=1)
    land(settings, _batch(rng, 300, 300, threshold=1.5), hour=2)  # the concept moved
    land(settings, _batch(rng, 300, 600, threshold=1.5), hour=3)
    ingest_landing(settings, engine)
    healthy = check_next_batch(settings, engine, production_version=version).performance
    decayed = check_next_batch(settings, engine, production_version=version).performance
    assert not healthy["realized"]["decayed"] and decayed["realized"]["decayed"]
    assert decayed["new_decay"] and not decayed["estimated"]["dropped"]  # CBPE cannot see it
    event = take_decay(settings, engine)
    assert event["model_version"] == version and event["current"] < event["reference"]
    assert take_decay(settings, engine) is None  # announced once
    again = check_next_batch(settings, engine, production_version=version).performance
    assert again["realized"]["decayed"] and not again["new_decay"]
    assert take_decay(settings, engine) is None  # still decaying: not announced again
    # one alert per scope that newly decayed (the batch, and the day it fell on), none for the
    # batch that was still decaying
    decays = [m for m in received if m["event"] == "performance_decay"]
    where = sorted(m["summary"].split(":")[0] for m in decays)
    assert len(where) == 2, where
    assert where[0] == f"Production v{version} decayed on batch {decayed['batch_id']}"
    assert where[1].startswith(f"Production v{version} decayed on day ")
    assert {m["model"] for m in decays} == {settings.model.name}
    values = {
        (g.name, labels): value
        for g in loop_gauges(engine, settings.model.name)
        for labels, value in g.samples
    }
    assert values[("driftloop_performance_decayed", ("batch",))] == 1.0
    latest = again["realized"]["metrics"]["accuracy"]["value"]
    assert values[("driftloop_performance_realized", ("batch", version, "accuracy"))] == latest
    assert ("driftloop_performance_reference", (version, "accuracy")) in values
    assert values[("driftloop_prediction_drift", ())] in (0.0, 1.0)
    assert values[("driftloop_model_inference_seconds", ())] > 0


def test_late_labels_join_on_the_id_column(monitored, tmp_path):
    settings, engine, version, _ = monitored
    rng = np.random.default_rng(4)
    batch = _batch(rng, 200, 0)
    land(settings, batch.drop(columns="y"), hour=1)
    ingest_landing(settings, engine)
    before = check_next_batch(settings, engine, production_version=version).performance
    assert before["realized"] is None and before["estimated"] is not None
    kept = predictions_path(settings, 1, version)
    labels = tmp_path / "labels.csv"
    batch[["row_id", "y"]].iloc[::-1].to_csv(labels, index=False)  # any order
    labelled = label_batch(settings, engine, "1", labels)
    assert labelled.labels == 200 and labelled.replaced == 0
    realized = labelled.check.realized
    assert realized.rows == 200 and realized.test is not None and not realized.decayed
    (note,) = labelled.check.notes  # the estimate before labels, against what they say
    estimated = before["estimated"]["metrics"]["accuracy"]["value"]
    assert f"estimated before labels {estimated:.4f}" in note and "inside the band" in note
    day = check_day(settings, engine, version, date(2026, 1, 1)).realized
    assert day.rows == 200
    with engine.connect() as connection:  # labelling checked the batch's day again
        days = (
            connection.execute(
                sa.select(PerformanceCheck.rows).where(PerformanceCheck.scope == "day")
            )
            .scalars()
            .all()
        )
    assert days[0] == 0 and 200 in days[1:]
    # bad files are refused whole: nothing in the kept predictions changes
    stored = kept.read_bytes()
    unknown = tmp_path / "unknown.csv"
    batch[["row_id", "y"]].assign(row_id=lambda f: f["row_id"] + "x").to_csv(unknown, index=False)
    with pytest.raises(IngestError, match="not in batch 1"):
        label_batch(settings, engine, "1", unknown)
    twice = tmp_path / "twice.csv"
    batch[["row_id", "y"]].iloc[[0, 0]].to_csv(twice, index=False)
    with pytest.raises(IngestError, match="twice"):
        label_batch(settings, engine, "1", twice)
    no_ids = tmp_path / "no_ids.csv"
    batch[["y"]].to_csv(no_ids, index=False)
    with pytest.raises(IngestError, match="lacks column"):
        label_batch(settings, engine, "1", no_ids)
    assert kept.read_bytes() == stored


def test_the_cli_labels_a_batch_and_refuses_without_an_id_column(tmp_path, settings):
    from driftloop.cli import app

    config = tmp_path / "driftloop.yaml"
    config.write_text((ROOT / "driftloop.yaml").read_text())
    labels = tmp_path / "labels.csv"
    labels.write_text("row_id,quality\nr1,6\n")
    env = {
        "DRIFTLOOP_STORAGE__HOME": str(tmp_path / "home"),
        "DRIFTLOOP_DATA__PATH": str(ROOT / "data/wine/winequality-white.csv"),
    }
    result = CliRunner().invoke(
        app, ["--config", str(config), "batches", "label", "1", str(labels)], env=env
    )
    assert result.exit_code != 0
    assert "data.id_column is not set" in str(result.exception)


def test_feedback_counts_in_the_day(monitored):
    from driftloop import registry
    from tests.support.ab_traffic import send

    settings, engine, version, _ = monitored
    today = datetime.now(UTC)
    send(
        settings,
        engine,
        registry.PRODUCTION,
        version,
        200,
        0.5,
        seed=1,
        start=today.replace(hour=0, minute=1),
    )
    day = check_day(settings, engine, version, today.date()).realized
    assert day.rows == 200 and 0.35 < day.metrics["accuracy"].value < 0.65


def test_old_decay_keys_fail_with_what_replaces_them(tmp_path):
    config = tmp_path / "driftloop.yaml"
    config.write_text(
        (ROOT / "driftloop.yaml").read_text().replace("ab:\n", "ab:\n  decay_limit: 0.05\n", 1)
    )
    with pytest.raises(ConfigError, match=r"ab.decay_limit no longer exist.*monitoring.alpha"):
        load_settings(config, storage={"home": tmp_path})


def test_the_id_column_is_never_a_feature(tmp_path):
    with pytest.raises(ValueError, match="id_column 'y' is a feature or the target"):
        synthetic_settings(tmp_path, data={"id_column": "y"})
    assert "row_id" not in FEATURES


def test_a_regression_batch_is_measured_with_mae_and_its_predictions_tested(tmp_path):
    """Regression: MAE and RMSE with intervals, Welch's test, prediction drift on values; no
    estimate before labels (nothing to calibrate), said in the docs."""
    settings = synthetic_settings(
        tmp_path / "home",
        task="regression",
        drift={"calibration_draws": 400, "false_alarm_rate": 0.05},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    rng = np.random.default_rng(6)
    version = register_production(settings, engine, synthetic(rng, 800), task="regression")
    land(settings, synthetic(rng, 300), hour=1)
    ingest_landing(settings, engine)
    performance = check_next_batch(settings, engine, production_version=version).performance
    realized = performance["realized"]
    assert (
        set(realized["metrics"]) == {"mae", "rmse"} and realized["test"]["test"] == "Welch's t test"
    )
    assert not realized["decayed"] and performance["estimated"] is None
    assert (
        performance["prediction_drift"]["tested"] and not performance["prediction_drift"]["drifted"]
    )
