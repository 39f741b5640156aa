"""Which batches wait for a drift check, who is checking each, and which drift a retrain takes.

``drift_monitor`` checks every unchecked batch at once (one mapped task per batch, possibly on
several Celery workers), and a person may check a batch from the CLI meanwhile. Each batch is
still checked exactly once: a checker first claims the batch with one atomic ``UPDATE ...
WHERE`` nobody else holds it (PostgreSQL re-evaluates the condition after a concurrent update
commits, so exactly one of two racing claims changes the row), and ``drift_checks.batch_id`` is
unique besides. A claim names its checker; the same checker (an Airflow retry of the same
mapped task) may take it again, and a claim older than :data:`CLAIM_TIMEOUT` is taken to be
abandoned (its worker died without releasing it).

When several drift events wait for ``retrain``, one retrain takes the newest drift check (by
the time of its batch) and :func:`merge_drift_checks` records the others as merged into it.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from driftloop.stages.ingest import ACCEPTED, IngestError
from driftloop.storage import Batch, DriftCheck, session_scope, utcnow

CLAIM_TIMEOUT = timedelta(hours=1)
"""A claim this old is abandoned: far longer than any check (a 1M-row batch takes seconds)."""
MAX_MAPPED_CHECKS = 256
"""Batches one ``drift_monitor`` run checks at most (mapped tasks); the next run takes the rest."""


class BatchBusy(IngestError):
    """Another checker holds the batch; its check will store the result."""


@dataclass(frozen=True)
class DriftMerge:
    """The drift check a retrain takes, and the waiting ones it merged into it."""

    drift_check_id: int | None
    merged: tuple[int, ...] = ()


def claimant_id() -> str:
    """A checker's name when it has no Airflow task to be named after (the CLI)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _unclaimed(claimant: str | None = None) -> sa.ColumnElement[bool]:
    held = [Batch.drift_claimed_by.is_(None), Batch.drift_claimed_at < utcnow() - CLAIM_TIMEOUT]
    if claimant is not None:
        held.append(Batch.drift_claimed_by == claimant)
    return sa.or_(*held)


def _not_checked() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(DriftCheck.batch_id == Batch.id)


def unchecked_batches(engine: sa.Engine, model: str, limit: int = MAX_MAPPED_CHECKS) -> list[int]:
    """``model``'s accepted batches with no drift check that nobody is checking, oldest first
    (another model's batches are its own checkers' to take)."""
    with session_scope(engine) as session:
        return list(
            session.scalars(
                sa.select(Batch.id)
                .where(
                    Batch.model_name == model,
                    Batch.status == ACCEPTED,
                    _not_checked(),
                    _unclaimed(),
                )
                .order_by(Batch.batch_time, Batch.id)
                .limit(limit)
            )
        )


def claim_batch(engine: sa.Engine, batch_id: int, claimant: str) -> bool:
    """Take the batch for ``claimant``; False when another checker holds it or it is checked."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(Batch)
            .where(Batch.id == batch_id, _unclaimed(claimant), _not_checked())
            .values(drift_claimed_by=claimant, drift_claimed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def release_claim(engine: sa.Engine, batch_id: int, claimant: str) -> None:
    """Give the batch back (the check failed before storing anything), if still ours."""
    with session_scope(engine) as session:
        session.execute(
            sa.update(Batch)
            .where(Batch.id == batch_id, Batch.drift_claimed_by == claimant)
            .values(drift_claimed_by=None, drift_claimed_at=None)
            .execution_options(synchronize_session=False)
        )


def busy(engine: sa.Engine, batch_id: int) -> BatchBusy:
    """The error for a batch another checker holds, naming the checker."""
    with session_scope(engine) as session:
        batch = session.get(Batch, batch_id)
        since = batch.drift_claimed_at.isoformat(timespec="seconds") if batch else "?"
        holder = batch.drift_claimed_by if batch else "?"
        return BatchBusy(
            f"batch {batch_id} ({batch.name if batch else '?'}) is being checked by {holder} "
            f"since {since}; that check stores its result (a claim older than "
            f"{CLAIM_TIMEOUT} counts as abandoned)"
        )


def merge_drift_checks(engine: sa.Engine, check_ids: list[int | None]) -> DriftMerge:
    """Of the drift checks behind waiting events, take the newest (its batch's time, then its
    id) and record the others as merged into it. Idempotent: a retried task merges alike, and
    a check merged before keeps the check it was first merged into."""
    ids = sorted({int(i) for i in check_ids if i is not None})
    if not ids:
        return DriftMerge(None)
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(DriftCheck.id)
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .where(DriftCheck.id.in_(ids))
            .order_by(Batch.batch_time.desc(), Batch.id.desc(), DriftCheck.id.desc())
        ).all()
        found = [row[0] for row in rows]
        if not found:
            return DriftMerge(None)
        newest, merged = found[0], tuple(sorted(found[1:]))
        if merged:
            session.execute(
                sa.update(DriftCheck)
                .where(DriftCheck.id.in_(merged), DriftCheck.merged_into.is_(None))
                .values(merged_into=newest)
                .execution_options(synchronize_session=False)
            )
    return DriftMerge(newest, merged)
