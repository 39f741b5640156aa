"""Older drift artifacts keep working: format-1 profiles are calibrated once and stored, and
format-1 reports stay readable by the CLI and ``/metrics``."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.drift.engine import REPORT_FORMAT
from driftloop.drift.profile import FORMAT_VERSION, ReferenceProfile
from driftloop.ingestion.stream import replay
from driftloop.reports.drift import read_report
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing
from driftloop.stages.reference_profiles import resolve_profile
from driftloop.storage import DriftCheck, ReferenceProfileRecord, session_scope
from driftloop.ui.gauges import loop_gauges


def _as_format_1(path: Path) -> None:
    """Rewrite a stored profile the way format 1 wrote it: no calibration keys, no null arrays."""
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(stored["meta"].tobytes().decode())
        arrays = {k: stored[k] for k in stored.files if k != "meta" and "_null_" not in k}
    meta["format"] = 1
    meta.pop("calibration_draws")
    for column in meta["columns"]:
        column.pop("null_sizes")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.fixture
def landed(settings, engine, monkeypatch):
    replay(settings, "none", n_batches=2)
    ingest_landing(settings, engine)
    # the CLI (invoked in-process) reads the same home and database from the environment
    monkeypatch.setenv("DRIFTLOOP_STORAGE__HOME", str(settings.storage.home))
    monkeypatch.setenv("DRIFTLOOP_DATABASE__URL", engine.url.render_as_string(hide_password=False))
    return settings


def test_a_format_1_profile_is_calibrated_once_and_stored(landed, engine, caplog):
    record, _ = resolve_profile(landed, engine)  # the initial reference, calibrated
    _as_format_1(Path(record.path))
    assert ReferenceProfile.load(Path(record.path)).format == 1
    with caplog.at_level(logging.INFO, logger="driftloop.stages.reference_profiles"):
        resolve_profile(landed, engine)
    assert "calibrated" in caplog.text and "format 1" in caplog.text
    stored = ReferenceProfile.load(Path(record.path))
    assert stored.format == FORMAT_VERSION
    assert stored.is_calibrated(landed.drift.statistics, landed.drift.draws)
    with session_scope(engine) as session:
        digest = session.get(ReferenceProfileRecord, record.id).digest
    assert digest == hashlib.sha256(Path(record.path).read_bytes()).hexdigest()  # row = file
    assert digest == record.digest  # the draws are seeded by the data: the same thresholds
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="driftloop.stages.reference_profiles"):
        resolve_profile(landed, engine)
    assert "calibrated" not in caplog.text  # once
    outcome = check_next_batch(landed, engine)
    assert outcome.status == "no_drift"


def _downgrade_report(path: Path) -> dict:
    """The JSON as format 1 wrote it: fixed thresholds, no format_version, no bars."""
    record = json.loads(path.read_text())
    old = {k: v for k, v in record.items() if k not in ("format_version", "tested_features")}
    old.update(thresholds={"mean_shift": 0.5, "wasserstein": 0.3, "jensen_shannon": 0.2})
    for key in ("mode", "statistics", "false_alarm_rate", "floors", "min_rows"):
        old.pop(key)
    for column in [*old["features"], old["target"]]:
        column.pop("tested")
        for test in column["statistics"].values():
            for key in ("threshold", "floor", "p_value", "level", "decided_by"):
                test.pop(key)
    path.write_text(json.dumps(old))
    return old


def test_format_1_reports_stay_readable_in_the_cli_and_metrics(landed, engine):
    outcome = check_next_batch(landed, engine)
    with session_scope(engine) as session:
        json_path = Path(session.get(DriftCheck, outcome.report_id).json_path)
    current = read_report(json_path)
    assert current["format_version"] == REPORT_FORMAT and current["mode"] == "calibrated"
    format_2 = {**current, "format_version": 2}  # before the categorical test's numbers
    json_path.write_text(json.dumps(format_2))
    assert read_report(json_path) == {**format_2, "format_version": REPORT_FORMAT}
    format_4 = {k: v for k, v in current.items() if k != "segments_call_drift"}
    json_path.write_text(json.dumps({**format_4, "format_version": 4}))  # before segment_retrain
    assert read_report(json_path) == current  # segments were reported only
    old = _downgrade_report(json_path)
    record = read_report(json_path)
    assert record["format_version"] == REPORT_FORMAT and record["mode"] == "fixed"
    first = record["features"][0]
    assert first["statistics"]["mean_shift"]["threshold"] == 0.5
    assert first["statistics"]["mean_shift"]["decided_by"] == "fixed"
    assert (
        first["statistics"]["mean_shift"]["value"]
        == old["features"][0]["statistics"]["mean_shift"]["value"]
    )

    gauges = {g.name: dict(g.samples) for g in loop_gauges(engine, landed.model.name)}
    label = (first["name"], "mean_shift")
    assert gauges["driftloop_drift_feature_score"][label] == pytest.approx(
        first["statistics"]["mean_shift"]["value"]
    )
    assert gauges["driftloop_drift_feature_threshold"][label] == 0.5

    result = CliRunner().invoke(app, ["drift", "show", str(outcome.report_id)])
    assert result.exit_code == 0, result.output
    assert "thresholds fixed" in result.output
    assert f"  {first['name']} (" in result.output and "(fixed)" in result.output


def test_drift_show_explains_a_calibrated_verdict(landed, engine):
    outcome = check_next_batch(landed, engine)
    result = CliRunner().invoke(app, ["drift", "show", str(outcome.report_id)])
    assert result.exit_code == 0, result.output
    assert "thresholds calibrated" in result.output
    assert "(threshold), p " in result.output or "(floor), p " in result.output
    # the batch test over features and the categorical test's numbers (the class target)
    assert "batch test: p-value " in result.output and "th smallest feature vs " in result.output
    assert "unseen 0.0%, largest new level 0 (p " in result.output
    missing = CliRunner().invoke(app, ["drift", "show", "999"])
    assert missing.exit_code == 1 and "no drift report 999" in missing.output
