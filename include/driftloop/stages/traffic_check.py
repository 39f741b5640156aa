"""The stored side of drift on served traffic: which windows, which rows, and the saved checks.

``drift_monitor`` calls :func:`check_traffic` on its schedule. Each closed window of the
prediction log (``monitoring.traffic_window``, aligned on the epoch) that holds served records
of this model and has no check yet is tested against the reference a batch would be tested
against (the Production version's profile: ``reference_profiles.resolve_profile``), with the batch's
calibrated tests and report (:mod:`driftloop.drift.traffic` says what differs: the verdict).

Which rows: this model's answered records (``status`` 200) that a client sent, whichever
variant answered them. Left out: shadow rows (Staging's unreturned answers repeat the inputs
Production answered), batch-scored rows (``assignment`` batch: files, not traffic), failed
requests (no inputs) and every other model's rows.

A window with fewer than ``monitoring.traffic_min_rows`` records is stored as
``insufficient_data``, untested; a window without any record is not stored. One row per model
and window (a unique pair) keeps a window from being checked twice, also by two checkers at
once. A drift verdict sends a ``traffic_drift`` alert and starts no retrain: a skewed client
is the client's bug to fix (a retrain would learn it), and the served inputs carry no labels
to retrain on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.drift.engine import DriftError
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.traffic import (
    Window,
    check_window,
    inputs_frame,
    traffic_settings,
    window_of,
)
from driftloop.reports.drift import write_report
from driftloop.stages import alerts
from driftloop.stages.reference_profiles import production_importances, resolve_profile
from driftloop.storage import BATCH, Prediction, TrafficCheck, session_scope, utcnow
from driftloop.vocabulary import DriftStatus

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_RUN = 24
"""Windows one call checks at most, oldest first (the rest wait for the next run)."""
FIRST_LOOKBACK_WINDOWS = 24
"""How far back a model's first traffic check looks, in windows: a log kept for months is not
judged all at once against today's reference."""


@dataclass(frozen=True)
class TrafficOutcome:
    """What the check of one traffic window found, as the DAG reports it."""

    check_id: int
    window_start: str
    window_end: str
    rows: int
    status: str
    drifted_features: list[str] = field(default_factory=list)
    drift_share: float | None = None
    multivariate_flag: bool | None = None
    model_version: str | None = None
    html_path: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    new: bool = True

    @property
    def drifted(self) -> bool:
        return self.status == DriftStatus.DRIFT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _served(model: str) -> sa.ColumnElement[bool]:
    """The log rows that are this model's served traffic (see the module's docstring)."""
    return sa.and_(
        Prediction.model_name == model,
        Prediction.shadow.is_(False),
        Prediction.status == 200,
        sa.or_(Prediction.assignment.is_(None), Prediction.assignment != BATCH),
    )


def pending_windows(
    settings: Settings, engine: sa.Engine, now: datetime | None = None, limit: int | None = None
) -> list[Window]:
    """The closed windows with served records and no check yet, oldest first: from the end of
    the newest window checked (or ``FIRST_LOOKBACK_WINDOWS`` back), jumping over empty ones."""
    now = now or utcnow()
    length = settings.monitoring.traffic_window
    model = settings.model.name
    limit = MAX_WINDOWS_PER_RUN if limit is None else limit
    with session_scope(engine) as session:
        newest = session.scalar(
            sa.select(sa.func.max(TrafficCheck.window_end)).where(TrafficCheck.model_name == model)
        )
        checked = set(
            session.scalars(
                sa.select(TrafficCheck.window_start).where(TrafficCheck.model_name == model)
            )
        )
        cursor = window_of(now, length).start - FIRST_LOOKBACK_WINDOWS * length
        if newest is not None:
            cursor = max(cursor, newest)
        windows: list[Window] = []
        while len(windows) < limit:
            first = session.scalar(
                sa.select(sa.func.min(Prediction.created_at)).where(
                    _served(model), Prediction.created_at >= cursor
                )
            )
            if first is None:
                break
            window = window_of(first, length)
            if not window.closed(now):
                break
            if window.start not in checked:
                windows.append(window)
            cursor = window.end
    return windows


def check_traffic(
    settings: Settings,
    engine: sa.Engine,
    production_version: str | None = None,
    now: datetime | None = None,
) -> list[TrafficOutcome]:
    """Check every pending traffic window (:func:`pending_windows`) and store each result."""
    windows = pending_windows(settings, engine, now)
    if not windows:
        return []
    # the window's verdict shares the rate with the multivariate test: more draws than a batch
    draws = traffic_settings(settings.drift).draws
    record, profile = resolve_profile(settings, engine, production_version, draws)
    importances = production_importances(settings, production_version)
    return [
        check_one(settings, engine, window, record.id, profile, production_version, importances)
        for window in windows
    ]


def window_rows(settings: Settings, engine: sa.Engine, window: Window) -> dict[str, Any]:
    """The window's served inputs, and counts of the log rows left out of it."""
    model = settings.model.name
    within = sa.and_(
        Prediction.model_name == model,
        Prediction.created_at >= window.start,
        Prediction.created_at < window.end,
    )
    with engine.connect() as connection:
        inputs = connection.scalars(
            sa.select(Prediction.inputs)
            .where(_served(model), within)
            .order_by(Prediction.created_at, Prediction.id)
        ).all()
        shadow = connection.scalar(
            sa.select(sa.func.count()).where(within, Prediction.shadow.is_(True))
        )
        batch = connection.scalar(
            sa.select(sa.func.count()).where(
                within, Prediction.shadow.is_(False), Prediction.assignment == BATCH
            )
        )
    return {"inputs": inputs, "shadow_rows": int(shadow or 0), "batch_rows": int(batch or 0)}


def check_one(
    settings: Settings,
    engine: sa.Engine,
    window: Window,
    profile_id: int,
    profile: ReferenceProfile,
    production_version: str | None,
    importances: dict[str, float] | None = None,
) -> TrafficOutcome:
    """Test one window's records and store the check (a window stored meanwhile by another
    checker is returned as theirs, ``new=False``)."""
    found = window_rows(settings, engine, window)
    frame, without_inputs = inputs_frame(found["inputs"], profile.features)
    details = {
        "shadow_rows_left_out": found["shadow_rows"],
        "batch_rows_left_out": found["batch_rows"],
        "records_without_inputs": without_inputs,
    }
    check = TrafficCheck(
        model_name=settings.model.name,
        window_start=window.start,
        window_end=window.end,
        rows=len(frame),
        profile_id=profile_id,
        model_version=production_version,
        drifted_features=[],
        details=details,
        created_at=utcnow(),
    )
    minimum = settings.monitoring.traffic_min_rows
    if len(frame) < minimum:
        check.status = DriftStatus.INSUFFICIENT_DATA
        check.error = (
            f"{len(frame)} served records, fewer than monitoring.traffic_min_rows={minimum}"
        )
    else:
        _test(settings, check, window, frame, profile, importances)
    try:
        with session_scope(engine) as session:
            session.add(check)
    except sa.exc.IntegrityError:  # another checker stored this window meanwhile: keep theirs
        with session_scope(engine) as session:
            theirs = session.scalar(
                sa.select(TrafficCheck).where(
                    TrafficCheck.model_name == settings.model.name,
                    TrafficCheck.window_start == window.start,
                )
            )
            return _outcome(theirs, new=False)
    outcome = _outcome(check, new=True)
    if outcome.drifted:
        alerts.send(
            settings,
            "traffic_drift",
            f"served traffic of {window.start:%Y-%m-%d %H:%M} to {window.end:%H:%M} UTC drifted: "
            f"{', '.join(outcome.drifted_features) or 'the features together'}",
            outcome.to_dict(),
        )
    return outcome


def _test(
    settings: Settings,
    check: TrafficCheck,
    window: Window,
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    importances: dict[str, float] | None,
) -> None:
    """Run the calibrated tests on the window and write its report into ``check``."""
    started = time.perf_counter()
    try:
        verdict = check_window(profile, frame, settings.drift, importances)
    except (DriftError, ValueError) as exc:
        check.status, check.error = DriftStatus.FAILED, str(exc)
        return
    seconds = time.perf_counter() - started
    check.status, check.drift_share = verdict.status, verdict.drift_share
    check.drifted_features = verdict.drifted_features
    check.multivariate_flag = None if verdict.multivariate is None else verdict.multivariate.flag
    context = {
        "batch": f"served traffic {window.start:%Y-%m-%d %H:%M:%S} to {window.end:%H:%M:%S} UTC",
        "source": "traffic",
        "window start": window.start.isoformat(),
        "window end": window.end.isoformat(),
        "served records": len(frame),
        **{key.replace("_", " "): value for key, value in check.details.items()},
        "reference": profile.source,
        "reference rows": profile.rows,
        "profile id": check.profile_id,
        "production model version": check.model_version or "none",
        "verdict": "the features together may call drift on their own (half the false-alarm "
        "rate each); a traffic window starts no retrain",
        "checked at": check.created_at.isoformat(timespec="seconds"),
        "drift check seconds": round(seconds, 4),
    }
    stem = f"traffic-{settings.model.name}-{window.label}"
    json_path, html_path = write_report(
        verdict, profile, settings.storage.reports_dir / "traffic", stem, context
    )
    check.json_path, check.html_path = str(json_path), str(html_path)


def _outcome(check: TrafficCheck, new: bool) -> TrafficOutcome:
    return TrafficOutcome(
        check_id=check.id,
        window_start=check.window_start.isoformat(),
        window_end=check.window_end.isoformat(),
        rows=check.rows,
        status=check.status,
        drifted_features=list(check.drifted_features or []),
        drift_share=check.drift_share,
        multivariate_flag=check.multivariate_flag,
        model_version=check.model_version,
        html_path=check.html_path,
        error=check.error,
        details=dict(check.details or {}),
        new=new,
    )


def recent_traffic_checks(engine: sa.Engine, model: str, limit: int = 24) -> list[TrafficOutcome]:
    """``model``'s newest traffic checks first."""
    with session_scope(engine) as session:
        checks = session.scalars(
            sa.select(TrafficCheck)
            .where(TrafficCheck.model_name == model)
            .order_by(TrafficCheck.window_start.desc())
            .limit(limit)
        ).all()
        return [_outcome(check, new=False) for check in checks]
