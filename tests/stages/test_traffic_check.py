"""The traffic check stage (issue 31, item 4): the prediction log's served records per window,
written by the log's own writer process, against the Production version's stored profile;
shadow, batch-scored and other models' rows left out; each window checked once."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.config.sections import DataSettings
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.traffic import SETTLE, traffic_settings, window_of
from driftloop.schema import upgrade
from driftloop.stages.reference_profiles import profile_from_frame, resolve_profile, store_profile
from driftloop.stages.traffic_check import check_traffic, pending_windows, recent_traffic_checks
from driftloop.storage import (
    ReferenceProfileRecord,
    TrafficCheck,
    make_engine,
    session_scope,
    utcnow,
)
from driftloop.vocabulary import DriftStatus
from tests.support.traffic_rows import FEATURES, population, served_rows, skewed, write_log

VERSION = "3"
HOUR = timedelta(hours=1)


@pytest.fixture
def traffic(settings: Settings, tmp_path: Path, database_url: str):
    """Settings of a model with the synthetic features, a migrated database, and the
    Production version's profile stored as the retrain stores it."""
    data = DataSettings(
        path=tmp_path / "unused.csv",
        target="label",
        task="classification",
        features=FEATURES,
        categorical_features=["region"],
    )
    settings = settings.model_copy(
        update={
            "data": data,
            "database": settings.database.model_copy(update={"url": database_url}),
        }
    )
    engine = make_engine(database_url)
    upgrade(engine)
    rng = np.random.default_rng(77)
    profile = profile_from_frame(population(rng, 5_000), settings, "synthetic reference")
    store_profile(settings, engine, profile, "model", model_version=VERSION)
    yield settings, engine, rng
    engine.dispose()


def test_a_client_sending_one_feature_x100_is_flagged_and_left_out_rows_do_not_count(
    traffic, receiver
) -> None:
    settings, engine, rng = traffic
    url, received = receiver
    settings = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"webhook_url": url})}
    )
    model = settings.model.name
    now = utcnow()
    skew_window = window_of(now - 3 * HOUR, HOUR)
    clean_window = window_of(now - 2 * HOUR, HOUR)
    thin_window = window_of(now - HOUR, HOUR)
    open_window = window_of(now, HOUR)  # still filling: not checked yet

    client = population(rng, 500)
    client["x2"] *= 100  # the one client of this window sends x2 in other units
    clean = population(rng, 500)
    wild = population(rng, 300)
    wild["x2"] *= 100  # rows that are not served traffic of this model
    rows = [
        *served_rows(model, client, skew_window.start, HOUR, client=(client["x2"] > 0)),
        *served_rows(model, clean[:250], clean_window.start, HOUR),
        *served_rows(model, clean[250:], clean_window.start + HOUR / 2, HOUR / 2, "staging"),
        *served_rows(model, wild[:100], clean_window.start, HOUR, "staging", shadow=True),
        *served_rows(model, wild[100:200], clean_window.start, HOUR, assignment="batch"),
        *served_rows("another-model", wild[200:], clean_window.start, HOUR),
        *served_rows(model, population(rng, 40), thin_window.start, HOUR),
        *served_rows(model, population(rng, 300), open_window.start, now - open_window.start),
    ]
    write_log(engine, rows)

    assert pending_windows(settings, engine, now) == [skew_window, clean_window, thin_window]
    skew, normal, thin = check_traffic(settings, engine, VERSION, now)

    assert skew.status == DriftStatus.DRIFT and "x2" in skew.drifted_features
    assert skew.rows == 500 and skew.multivariate_flag and skew.model_version == VERSION
    report = json.loads(Path(skew.html_path).with_suffix(".json").read_text())
    assert report["source"] == "traffic" and report["multivariate"]["calls_drift"] is True
    assert report["multivariate"]["tail"]["count"] > 400
    assert "Features together" in Path(skew.html_path).read_text()
    assert [a["event"] for a in received] == ["traffic_drift"]

    assert normal.status == DriftStatus.NO_DRIFT and normal.rows == 500  # both variants' served
    assert normal.details == {
        "shadow_rows_left_out": 100,
        "batch_rows_left_out": 100,
        "records_without_inputs": 0,
    }
    assert thin.status == DriftStatus.INSUFFICIENT_DATA and thin.rows == 40
    assert "traffic_min_rows=200" in thin.error and thin.html_path is None

    # windows already checked are not checked again; the open one waits until it closes
    assert check_traffic(settings, engine, VERSION, now) == []
    later = open_window.end + SETTLE
    assert pending_windows(settings, engine, later) == [open_window]
    (closed,) = check_traffic(settings, engine, VERSION, later)
    assert closed.status == DriftStatus.NO_DRIFT and closed.rows == 300
    newest = recent_traffic_checks(engine, model)
    assert [c.window_start for c in newest] == [
        w.start.isoformat() for w in (open_window, thin_window, clean_window, skew_window)
    ]


def test_a_client_sending_5_percent_with_one_feature_x2_is_flagged_in_a_window_of_20000(
    traffic,
) -> None:
    settings, engine, rng = traffic
    now = utcnow()
    window = window_of(now - 2 * HOUR, HOUR)
    served = population(rng, 20_000)
    client = skewed(served, 0.05, "x5", 2.0, rng)
    write_log(engine, served_rows(settings.model.name, served, window.start, HOUR, client=client))

    (outcome,) = check_traffic(settings, engine, VERSION, now)
    assert outcome.rows == 20_000 and outcome.status == DriftStatus.DRIFT
    assert outcome.drift_share < settings.drift.drift_share  # the batch rule alone: no drift
    report = json.loads(Path(outcome.html_path).with_suffix(".json").read_text())
    assert report["multivariate"]["contributions"][0]["feature"] == "x5"
    assert report["multivariate"]["tail"]["p_value"] < 1e-4  # its bar: level / 2, 0.0025


def test_a_window_stored_meanwhile_is_not_stored_twice(traffic) -> None:
    """Two checkers that both found the window pending: the second keeps the first's check."""
    settings, engine, rng = traffic
    now = utcnow()
    window = window_of(now - 2 * HOUR, HOUR)
    write_log(engine, served_rows(settings.model.name, population(rng, 300), window.start, HOUR))
    from driftloop.stages.traffic_check import check_one

    record, profile = resolve_profile(settings, engine, VERSION)
    first = check_one(settings, engine, window, record.id, profile, VERSION)
    second = check_one(settings, engine, window, record.id, profile, VERSION)
    assert first.new and not second.new and second.check_id == first.check_id
    with session_scope(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TrafficCheck)) == 1


def test_the_window_check_stores_the_draws_its_bar_needs_once(traffic) -> None:
    """A window's verdict shares the rate with the multivariate test, so its bar needs more
    null draws than a batch's: the first window check calibrates the stored profile to them
    and saves it; a batch check afterwards keeps them (no redrawing in turn)."""
    settings, engine, rng = traffic
    needed = traffic_settings(settings.drift).draws
    assert needed > settings.drift.draws
    now = utcnow()
    window = window_of(now - 2 * HOUR, HOUR)
    write_log(engine, served_rows(settings.model.name, population(rng, 300), window.start, HOUR))
    check_traffic(settings, engine, VERSION, now)
    record, profile = resolve_profile(settings, engine, VERSION)  # as a batch check finds it
    assert profile.calibration_draws == needed
    stored = Path(record.path)
    assert ReferenceProfile.load(stored).calibration_draws == needed
    with session_scope(engine) as session:
        digest = session.get(ReferenceProfileRecord, record.id).digest
    assert digest == hashlib.sha256(stored.read_bytes()).hexdigest()
