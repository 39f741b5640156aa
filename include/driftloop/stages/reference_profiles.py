"""The reference a drift check tests against: built from a frame, stored as a file and a row,
reset by a person, and resolved for a check (with the null draws that check needs).

The reference profile in use is, in order: the profile of the current Production model version
(registered by the retraining step, stored here with ``kind='model'``), else the active
reference profile (the initial reference split, or a person's ``driftloop drift
reset-reference``), built on first use. A profile stored without the null draws a check needs
(made before calibrated thresholds, with other statistics, or with fewer draws than a served
traffic window's bar asks) is calibrated once, saved in place and logged. Its own module:
batch checks, served-traffic checks, the retrain and the CLI all use it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import read_table
from driftloop.drift.profile import ReferenceProfile, build_profile
from driftloop.ingestion.stream import build_reference, reference_path
from driftloop.stages.ingest import IngestError
from driftloop.storage import ReferenceProfileRecord, session_scope, utcnow
from driftloop.task import task_of

log = logging.getLogger(__name__)


def profile_from_frame(
    frame: Any, settings: Settings, source: str, draws: int | None = None
) -> ReferenceProfile:
    """Profile a reference frame with the configured columns, kinds and sizes, its nulls drawn
    ``draws`` times (default ``drift.draws``; a served-traffic check asks for more)."""
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
        calibration_draws=0 if settings.drift.fixed else (draws or settings.drift.draws),
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
        # drawn at the number asked for at once: not built at drift.draws, then redrawn
        profile = profile_from_frame(read_table(path, settings.data), settings, str(path), draws)
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
