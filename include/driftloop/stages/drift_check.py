"""The stored side of drift monitoring: which batch, which reference, and the saved checks.

``drift_monitor`` calls :func:`check_next_batch`; the CLI calls the rest. The reference profile
in use is, in order: the profile of the current Production model version (registered by the
retraining step, stored here with ``kind='model'``), else the active reference profile (the
initial reference split, or a person's ``driftloop drift reset-reference``), built on first use.
A profile stored without the null draws the configured statistics need (made before calibrated
thresholds, or with other statistics or draws) is calibrated once, saved in place and logged.
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
from driftloop.drift.profile import ReferenceProfile, build_profile
from driftloop.drift.streaming import check_drift_streamed
from driftloop.ingestion.stream import build_reference, reference_path
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
from driftloop.storage import Batch, DriftCheck, ReferenceProfileRecord, session_scope, utcnow
from driftloop.task import task_of
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


def profile_from_frame(frame: Any, settings: Settings, source: str) -> ReferenceProfile:
    """Profile a reference frame with the configured columns, kinds and sizes."""
    columns = [
        *settings.feature_columns,
        *([settings.data.target] if settings.data.target in frame.columns else []),
    ]
    unprofiled = [name for name in settings.drift.segment_by if name not in columns]
    if unprofiled:  # segments are values of feature columns; others are not in the profile
        log.warning("drift.segment_by %s: not feature columns, so not segmented", unprofiled)
    return build_profile(
        frame[columns],
        categorical=settings.data.categorical_features,
        target=settings.data.target,
        target_is_categorical=task_of(settings).categorical_target,
        bins=settings.drift.bins,
        exact_max=settings.drift.exact_reference_max,
        source=source,
        statistics=settings.drift.statistics,
        calibration_draws=0 if settings.drift.fixed else settings.drift.draws,
        multivariate=settings.drift.multivariate,
        segment_by=settings.drift.segment_by,
        segment_min_rows=settings.drift.segment_min_rows,
    )


def store_profile(
    settings: Settings,
    engine: sa.Engine,
    profile: ReferenceProfile,
    kind: str,
    model_version: str | None = None,
    activate: bool = False,
) -> ReferenceProfileRecord:
    """Save a profile file and its row; ``activate`` makes it the fallback reference."""
    with session_scope(engine) as session:
        record = ReferenceProfileRecord(
            model_name=settings.model.name,
            kind=kind,
            source=profile.source,
            path="",
            digest="",
            data_digest=profile.data_digest,
            rows=profile.rows,
            model_version=model_version,
            active=False,
            created_at=utcnow(),
        )
        session.add(record)
        session.flush()
        path = settings.storage.profiles_dir / f"profile-{record.id:05d}-{kind}.npz"
        record.path, record.digest = str(path), profile.save(path)
        if activate:
            session.execute(
                sa.update(ReferenceProfileRecord)
                .where(ReferenceProfileRecord.model_name == settings.model.name)
                .values(active=False)
            )
            record.active = True
    return record


def reset_reference(
    settings: Settings, engine: sa.Engine, source_file: Path | None = None
) -> ReferenceProfileRecord:
    """Make a new active reference: the initial split, or a file a person chose."""
    if source_file is None:
        source_file, _rows = build_reference(settings)
    if not source_file.is_file():
        raise IngestError(f"reference file {source_file} does not exist")
    frame = read_table(source_file, settings.data)
    missing = sorted(set(settings.feature_columns) - set(frame.columns))
    if missing:
        raise IngestError(f"reference file {source_file} lacks feature column(s) {missing}")
    profile = profile_from_frame(frame, settings, str(source_file))
    return store_profile(settings, engine, profile, "reset", activate=True)


def resolve_profile(
    settings: Settings,
    engine: sa.Engine,
    production_version: str | None = None,
    draws: int | None = None,
) -> tuple[ReferenceProfileRecord, ReferenceProfile]:
    """The profile to test against: Production's, else the active reference.

    A person's ``reset-reference`` made after the Production version's profile wins over it,
    so a reset takes effect at once; the next registered version's profile wins again. It
    holds at least ``draws`` null draws (default ``drift.draws``; served-traffic checks need
    more, ``driftloop.drift.traffic``): a profile with fewer is calibrated and saved in place,
    once, and one with more keeps them (finer p-values, as valid).
    """
    drift = settings.drift
    draws = drift.draws if draws is None else draws
    with session_scope(engine) as session:
        record = None
        if production_version is not None:
            record = session.scalar(
                sa.select(ReferenceProfileRecord)
                .where(
                    ReferenceProfileRecord.model_name == settings.model.name,
                    ReferenceProfileRecord.kind == "model",
                    ReferenceProfileRecord.model_version == production_version,
                )
                .order_by(ReferenceProfileRecord.id.desc())
            )
        active = session.scalar(
            sa.select(ReferenceProfileRecord).where(
                ReferenceProfileRecord.model_name == settings.model.name,
                ReferenceProfileRecord.active.is_(True),
            )
        )
        if active is not None and (
            record is None or (active.kind == "reset" and active.id > record.id)
        ):
            record = active
    if record is None:
        path = reference_path(settings)
        if not path.is_file():
            path, _rows = build_reference(settings)
        profile = profile_from_frame(read_table(path, settings.data), settings, str(path))
        record = store_profile(settings, engine, profile, "initial", activate=True)
    else:
        profile = ReferenceProfile.load(Path(record.path))
    if not drift.fixed and not profile.is_calibrated(drift.statistics, draws):
        profile.calibrate(drift.statistics, draws)
        digest = profile.save(Path(record.path))
        with session_scope(engine) as session:
            session.get(ReferenceProfileRecord, record.id).digest = digest
        log.info(
            "profile %s (%s, format %s) calibrated for %s with %s draws and saved in place",
            record.id,
            record.path,
            profile.format,
            ", ".join(drift.statistics),
            draws,
        )
    return record, profile


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


def production_importances(settings: Settings, version: str | None) -> dict[str, float] | None:
    """The Production version's mean absolute SHAP per feature, for ``drift.weighting:
    importance`` (None otherwise, or when the version logged none: the count rule applies and
    the report says ``weighting: count``)."""
    if settings.drift.weighting != "importance" or version is None:
        return None
    from driftloop.performance.attribution import logged_importance

    found = logged_importance(settings.mlflow_tracking_uri, settings.model.name, version)
    if found is None:
        log.warning("version %s logged no SHAP importances: features are counted", version)
    return found


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
