"""The first retrain step: whether to retrain at all, and on which rows.

A retrain is skipped, and the skip recorded with its reason, when there is no Production
version to compare with, a Staging version is still under A/B test (unless
``training.replace_staging``), a version waits for more labelled rows for its gate, the last
retrain was within ``training.cooldown_minutes``, there are no labelled batches, or a version
was trained on exactly these rows. Otherwise the training set (Production's training data and
the recent batches), the gate holdout (the newest rows since the drift) and the new version's
drift reference (every row of the window since the drift, see :func:`reference_rows`) are
written as CSV files for the next steps.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.data import read_table, row_keys
from driftloop.stages import role_moves
from driftloop.stages.claims import merge_drift_checks
from driftloop.stages.drift_check import drift_batch_time
from driftloop.stages.gating import pending_versions
from driftloop.stages.ingest import ACCEPTED
from driftloop.stages.retrain_steps import Assembly, Decision, Skip, record
from driftloop.stages.tracking import data_digest, logged_training_data
from driftloop.storage import Batch, RetrainRun, session_scope, utcnow
from driftloop.vocabulary import RetrainDecision, Trigger

log = logging.getLogger(__name__)


def assemble_waiting(
    settings: Settings, engine: sa.Engine, drift_check_ids: list[int | None], trigger: Trigger
) -> Assembly | Skip:
    """One retrain for every drift event that waited: it takes the newest drift check and
    records the others as merged into it (``driftloop.stages.claims.merge_drift_checks``)."""
    merge = merge_drift_checks(engine, drift_check_ids)
    if merge.merged:
        log.info("drift checks %s merged into drift check %s", merge.merged, merge.drift_check_id)
    return assemble(settings, engine, merge.drift_check_id, trigger, merge.merged)


def assemble(
    settings: Settings,
    engine: sa.Engine,
    drift_check_id: int | None = None,
    trigger: Trigger = Trigger.DRIFT,
    merged: tuple[int, ...] = (),
) -> Assembly | Skip:
    """Decide whether to retrain; if so, write the training set and the gate holdout.
    ``merged``: drift checks whose events this attempt absorbed (recorded with its decision)."""
    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    name = settings.model.name
    production = registry.by_alias(client, name, registry.PRODUCTION)

    def skip(reason: str) -> Skip:
        log.info("retraining skipped: %s", reason)
        decision = Decision(
            RetrainDecision.SKIPPED,
            reason,
            production_version=production.version if production else None,
        )
        details = {"merged_drift_checks": list(merged)} if merged else None
        return Skip(record(engine, name, decision, trigger, drift_check_id, details))

    if production is None:
        return skip(
            f"{name} has no Production version, so there is nothing to compare with: "
            "run `driftloop bootstrap` first"
        )
    staging = registry.by_alias(client, name, registry.STAGING)
    if staging is not None and not settings.training.replace_staging:
        return skip(
            f"Staging version {staging.version} is still under A/B test "
            "(training.replace_staging is false)"
        )
    waiting = pending_versions(client, name)
    if waiting:
        return skip(
            f"version {waiting[0].version} awaits more labelled rows for its gate (pending); "
            "drift_monitor re-gates it as batches land"
        )
    if _cooling_down(settings, engine):
        return skip(
            f"the last retrain was less than {settings.training.cooldown_minutes:g} minutes ago "
            "(training.cooldown_minutes)"
        )

    base = logged_training_data(production.run_id)
    recent, drift_time = _recent_batches(settings, engine, drift_check_id)
    if recent.empty:
        return skip("no accepted, labelled batches to learn from")
    train_frame, holdout = split_holdout(recent, base, drift_time, settings)
    digest = data_digest(train_frame)
    same = registry.by_digest(client, name, digest)
    if same is not None:
        return skip(f"version {same.version} was trained on exactly this data")
    folder = settings.storage.home / "training" / f"{utcnow():%Y%m%dT%H%M%S%f}"
    folder.mkdir(parents=True, exist_ok=True)
    train_frame.to_csv(folder / "train.csv", index=False)
    holdout.to_csv(folder / "holdout.csv", index=False)
    reference = reference_rows(recent, drift_time, settings)
    if reference is not None:
        reference.to_csv(folder / "reference.csv", index=False)
        reference_source = (
            f"{len(reference)} rows of the window since "
            + (f"drift check {drift_check_id}" if drift_check_id is not None else "its start")
            + f" ({_time_span(recent, drift_time)}; gate holdout included)"
        )
    else:
        reference_source = (
            f"training data of run {digest[:12]}: only {len(_since(recent, drift_time))} rows "
            f"since the drift, fewer than drift.min_reference_rows="
            f"{settings.drift.min_reference_rows}"
        )
    log.info(
        "training set: %d rows (%d from Production's data); gate holdout: %d rows; "
        "drift reference: %s",
        len(train_frame),
        len(base),
        len(holdout),
        reference_source,
    )
    return Assembly(
        train_path=str(folder / "train.csv"),
        holdout_path=str(folder / "holdout.csv"),
        digest=digest,
        production_version=production.version,
        drift_check_id=drift_check_id,
        trigger=trigger,
        merged_drift_checks=tuple(merged),
        reference_path=str(folder / "reference.csv") if reference is not None else None,
        reference_source=reference_source,
    )


def _cooling_down(settings: Settings, engine: sa.Engine) -> bool:
    """Whether a challenger was gated (Staging or rejected) within the cooldown."""
    if settings.training.cooldown_minutes <= 0:
        return False
    with session_scope(engine) as session:
        last = session.scalar(
            sa.select(RetrainRun.created_at)
            .where(
                RetrainRun.model_name == settings.model.name,
                RetrainRun.decision.in_([RetrainDecision.STAGING, RetrainDecision.REJECTED]),
            )
            .order_by(RetrainRun.id.desc())
        )
    return last is not None and utcnow() - last < timedelta(
        minutes=settings.training.cooldown_minutes
    )


def _recent_batches(
    settings: Settings, engine: sa.Engine, drift_check_id: int | None
) -> tuple[pd.DataFrame, datetime | None]:
    """Rows of the newest accepted, labelled batches (window), with each row's batch time."""
    with session_scope(engine) as session:
        drift_time = drift_batch_time(session, drift_check_id)
        rows = session.execute(
            sa.select(Batch.path, Batch.batch_time)
            .where(
                Batch.model_name == settings.model.name,
                Batch.status == ACCEPTED,
                Batch.labelled.is_(True),
            )
            .order_by(Batch.batch_time.desc(), Batch.id.desc())
            .limit(settings.training.window_batches)
        ).all()
    columns = [*settings.feature_columns, settings.data.target]
    frames = []
    for path, batch_time in reversed(rows):
        frame = read_table(Path(path), settings.data)[columns].dropna(subset=[settings.data.target])
        frames.append(frame.assign(_batch_time=batch_time))
    recent = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*columns, "_batch_time"])
    )
    return recent, drift_time


def _since(recent: pd.DataFrame, drift_time: datetime | None) -> pd.DataFrame:
    """The window's rows from the drifted batch on (all of it without a drift, or when the
    drifted batch already left the window)."""
    since = recent if drift_time is None else recent[recent["_batch_time"] >= drift_time]
    return recent if since.empty else since


def _time_span(recent: pd.DataFrame, drift_time: datetime | None) -> str:
    times = _since(recent, drift_time)["_batch_time"]
    return f"batches of {times.min()} to {times.max()}"


def reference_rows(
    recent: pd.DataFrame, drift_time: datetime | None, settings: Settings
) -> pd.DataFrame | None:
    """The rows a retrained version's drift reference is profiled from: every row of the
    window since the drift (the gate holdout included: the reference describes the data, not
    the model), or None when fewer than ``drift.min_reference_rows`` (then the training set).

    Why not the training set: it mixes Production's old rows with the new ones, so batches of
    the new distribution Q differ from that mixture by ``(1 - w)(Q - P)`` (w the share of new
    rows), a bias that no sample size removes: the check flags them ever more surely as the
    rows grow, and every retrain adds only a window of new rows (a retrain storm,
    ``benchmarks/decision_tables_storm.py``). The rows since the drift are a sample of Q
    itself, so the calibrated null holds; their small number costs power, not false alarms,
    because the null draws pairs of (batch, reference) sizes (``drift.calibration``)."""
    since = _since(recent, drift_time)
    if len(since) < settings.drift.min_reference_rows:
        return None
    columns = [*settings.feature_columns, settings.data.target]
    return since[columns].reset_index(drop=True)


def split_holdout(
    recent: pd.DataFrame, base: pd.DataFrame, drift_time: datetime | None, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gate holdout: the newest ``holdout_share`` of the rows since the drift; Production
    never saw them and the challenger does not train on them (nor on exact copies of them).
    The share is of the rows since the drift, not of all recent rows, so the challenger always
    keeps most of the new data to learn from."""
    since = _since(recent, drift_time)
    n_holdout = min(len(since), max(1, math.ceil(settings.training.holdout_share * len(since))))
    holdout = since.iloc[len(since) - n_holdout :]
    rest = recent.drop(index=holdout.index)
    columns = [*settings.feature_columns, settings.data.target]
    holdout, rest = holdout[columns], rest[columns]
    train_frame = pd.concat([base[columns], rest], ignore_index=True)
    # row hashes depend on the dtype (6 and 6.0 differ): compare in the training set's dtypes,
    # or a column one CSV typed as integers and the other as floats lets copies through
    holdout_keys = row_keys(holdout.astype(train_frame.dtypes.to_dict()))
    train_frame = train_frame[~np.isin(row_keys(train_frame), holdout_keys)]
    return train_frame.reset_index(drop=True), holdout.reset_index(drop=True)
