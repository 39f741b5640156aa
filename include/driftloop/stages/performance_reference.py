"""Storing a version's performance reference (its out-of-sample predictions, computed by
``driftloop.performance.reference``) when retrain trains it, and tying it to the registered
version."""

from __future__ import annotations

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.performance.reference import ReferencePredictions
from driftloop.storage import PerformanceReferenceRecord, session_scope, utcnow
from driftloop.task import task_of


def store_reference(
    settings: Settings,
    engine: sa.Engine,
    reference: ReferencePredictions,
    model_version: str | None = None,
) -> int:
    """Save the predictions and their row (the version is set when it is registered)."""
    names = task_of(settings).report_metrics
    metrics = reference.metrics(names, settings.monitoring.confidence)
    with session_scope(engine) as session:
        record = PerformanceReferenceRecord(
            model_name=settings.model.name,
            model_version=model_version,
            source=reference.source,
            rows=reference.rows,
            metrics={name: value.value for name, value in metrics.items()},
            path="",
            created_at=utcnow(),
        )
        session.add(record)
        session.flush()
        path = settings.storage.home / "performance" / f"reference-{record.id:05d}.npz"
        reference.save(path)
        record.path = str(path)
        return record.id


def attach_version(engine: sa.Engine, reference_id: int, version: str) -> None:
    with session_scope(engine) as session:
        session.get(PerformanceReferenceRecord, reference_id).model_version = version
