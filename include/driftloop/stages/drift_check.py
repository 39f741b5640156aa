"""The stored side of drift monitoring: which batch, and the saved checks.

``drift_monitor`` calls :func:`check_next_batch`; the CLI calls the rest. What a batch is tested
against comes from :mod:`driftloop.stages.reference_profiles`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import exceeds_rows, read_table
from driftloop.drift.engine import DriftError, check_drift
from driftloop.drift.streaming import check_drift_streamed
from driftloop.reports.drift import write_report
from driftloop.stages import alerts
from driftloop.stages.claims import (
    busy,
    claim_batch,
    claimant_id,
    release_claim,
    unchecked_batches,
)
from driftloop.stages.ingest import ACCEPTED, IngestError, find_batch
from driftloop.stages.performance_check import assess_production
from driftloop.stages.reference_profiles import production_importances, resolve_profile
from driftloop.storage import Batch, DriftCheck, session_scope, utcnow
from driftloop.vocabulary import DriftStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckOutcome:
    """What a drift check found, as the DAG and the CLI report it."""

    batch_id: int
    batch_name: str
    report_id: int
    status: str
    drifted_features: list[str] = field(default_factory=list)
    drift_share: float | None = None
    target_drift: bool = False
    model_version: str | None = None
    html_path: str | None = None
    error: str | None = None
    new: bool = True  # False when the batch had been checked before: nothing changes
    performance: dict[str, Any] | None = None  # Production's predictions on the batch (new checks)
    merged_into: int | None = None  # the newer drift check a retrain took instead of this one

    @property
    def drifted(self) -> bool:
        return self.status == DriftStatus.DRIFT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_unchecked_batch(engine: sa.Engine, model: str) -> int | None:
    """``model``'s oldest accepted batch without a drift check that nobody is checking."""
    found = unchecked_batches(engine, model, limit=1)
    return found[0] if found else None


def check_next_batch(
    settings: Settings,
    engine: sa.Engine,
    batch_ref: str | int | None = None,
    production_version: str | None = None,
    model: Any | None = None,
    claimant: str | None = None,
) -> CheckOutcome | None:
    """Check ``batch_ref`` (or the oldest unchecked batch) and store the result.

    With a Production version, the version also predicts the batch (``model``, or the version
    loaded from the registry): its realized, estimated and prediction-drift figures are stored
    (``driftloop.performance``) and shown in the report, beside the drift check's own time.

    A batch checked before returns its stored outcome with ``new=False``. The checker
    (``claimant``: an Airflow task's name, else one made up) claims the batch first
    (``driftloop.stages.claims``); a batch another checker holds raises :class:`BatchBusy`. A
    check that fails is stored as ``failed`` with its reason, so it never blocks the batches
    after it. A new drift verdict is a ``drift_detected`` alert.
    """
    claimant = claimant or claimant_id()
    with session_scope(engine) as session:
        if batch_ref is None:
            batch_id = next_unchecked_batch(engine, settings.model.name)
            if batch_id is None:
                return None
            batch = session.get(Batch, batch_id)
        else:
            batch = find_batch(session, batch_ref, settings.model.name)
        if batch.status != ACCEPTED:
            raise IngestError(
                f"batch {batch.id} ({batch.name}) is {batch.status}; "
                "only accepted batches are checked"
            )
        existing = session.scalar(sa.select(DriftCheck).where(DriftCheck.batch_id == batch.id))
        if existing is not None:
            return _outcome(existing, batch, new=False)
        batch_id, batch_name, batch_path = batch.id, batch.name, Path(batch.path)
    if not claim_batch(engine, batch_id, claimant):
        with session_scope(engine) as session:
            existing = session.scalar(sa.select(DriftCheck).where(DriftCheck.batch_id == batch_id))
            if existing is not None:  # checked between our look and our claim
                return _outcome(existing, session.get(Batch, batch_id), new=False)
        raise busy(engine, batch_id)
    try:
        return _check_claimed(
            settings, engine, batch_id, batch_name, batch_path, production_version, model
        )
    except BaseException:
        release_claim(engine, batch_id, claimant)
        raise


def _check_claimed(
    settings: Settings,
    engine: sa.Engine,
    batch_id: int,
    batch_name: str,
    batch_path: Path,
    production_version: str | None,
    model: Any | None,
) -> CheckOutcome:
    """The check itself, of a batch this checker holds."""
    record, profile = resolve_profile(settings, engine, production_version)
    check = DriftCheck(
        model_name=settings.model.name,
        batch_id=batch_id,
        profile_id=record.id,
        model_version=production_version,
        created_at=utcnow(),
    )
    performance, frame = None, None
    streamed = exceeds_rows(batch_path, settings.data, settings.drift.exact_batch_max)
    try:
        started = time.perf_counter()
        if streamed:  # read by row group into summaries, never whole (drift.streaming)
            verdict = check_drift_streamed(profile, batch_path, settings.drift)
        else:
            frame = read_table(batch_path, settings.data)
            started = time.perf_counter()
            importances = production_importances(settings, production_version)
            verdict = check_drift(profile, frame, settings.drift, importances)
        drift_seconds = time.perf_counter() - started
    except (DriftError, OSError, ValueError) as exc:
        check.status, check.error, check.drifted_features, check.target_drift = (
            DriftStatus.FAILED,
            str(exc),
            [],
            False,
        )
    else:
        check.status, check.drift_share = verdict.status, verdict.drift_share
        check.drifted_features, check.target_drift = verdict.drifted_features, verdict.target_drift
        stem = f"drift-{batch_id:06d}-{Path(batch_name).stem}"
        if production_version is not None and frame is not None:
            performance = assess_production(
                settings, engine, batch_id, frame, production_version, model
            )
        context = {
            "batch": batch_name,
            "batch id": batch_id,
            "reference": profile.source,
            "reference rows": profile.rows,
            "profile id": record.id,
            "production model version": production_version or "none",
            "checked at": check.created_at.isoformat(timespec="seconds"),
            "drift check seconds": round(drift_seconds, 4),
        }
        if streamed:
            context["batch read"] = (
                f"by row group: {verdict.rows} rows > drift.exact_batch_max="
                f"{settings.drift.exact_batch_max}; Wasserstein from a sketch, flagged only "
                "beyond its error bound (sketch bound per statistic); Production's "
                "performance is not assessed on such a batch"
            )
        json_path, html_path = write_report(
            verdict, profile, settings.storage.reports_dir / "drift", stem, context, performance
        )
        check.json_path, check.html_path = str(json_path), str(html_path)
    try:
        with session_scope(engine) as session:
            session.add(check)
    except sa.exc.IntegrityError:  # a check without a claim stored it meanwhile: keep theirs
        with session_scope(engine) as session:
            existing = session.scalar(sa.select(DriftCheck).where(DriftCheck.batch_id == batch_id))
            return _outcome(existing, session.get(Batch, batch_id), new=False)
    with session_scope(engine) as session:
        outcome = _outcome(
            session.get(DriftCheck, check.id), session.get(Batch, batch_id), new=True
        )
    outcome = replace(outcome, performance=performance)
    if outcome.drifted:  # a new drift verdict, whoever asked for the check (DAG or CLI)
        alerts.send(
            settings,
            "drift_detected",
            f"batch {outcome.batch_name} drifted: {', '.join(outcome.drifted_features)}",
            outcome.to_dict(),
        )
    return outcome


def _outcome(check: DriftCheck, batch: Batch, new: bool) -> CheckOutcome:
    return CheckOutcome(
        batch_id=batch.id,
        batch_name=batch.name,
        report_id=check.id,
        status=check.status,
        drifted_features=list(check.drifted_features),
        drift_share=check.drift_share,
        target_drift=check.target_drift,
        model_version=check.model_version,
        html_path=check.html_path,
        error=check.error,
        new=new,
        merged_into=check.merged_into,
    )


def recent_checks(engine: sa.Engine, model: str, limit: int = 20) -> list[CheckOutcome]:
    """``model``'s newest drift checks first."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(DriftCheck, Batch)
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .where(DriftCheck.model_name == model)
            .order_by(DriftCheck.id.desc())
            .limit(limit)
        ).all()
        return [_outcome(check, batch, new=False) for check, batch in rows]


def drift_batch_time(session: sa.orm.Session, drift_check_id: int | None) -> datetime | None:
    """When the batch behind a drift check was taken: where "rows since the drift" start. For a
    check that older waiting checks were merged into, the oldest of their batches: the drift
    began there, and a retrain on the newest check still judges on every row since."""
    if drift_check_id is None:
        return None
    return session.scalar(
        sa.select(sa.func.min(Batch.batch_time))
        .join(DriftCheck, DriftCheck.batch_id == Batch.id)
        .where(sa.or_(DriftCheck.id == drift_check_id, DriftCheck.merged_into == drift_check_id))
    )


def latest_drift_check(engine: sa.Engine, model: str) -> int | None:
    """The id of ``model``'s newest check whose verdict was drift."""
    with session_scope(engine) as session:
        return session.scalar(
            sa.select(DriftCheck.id)
            .where(DriftCheck.model_name == model, DriftCheck.status == DriftStatus.DRIFT)
            .order_by(DriftCheck.id.desc())
            .limit(1)
        )
