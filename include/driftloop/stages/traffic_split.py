"""Storing a new traffic split (the admin API and ``driftloop traffic``): one more version of the
split for every worker to pick up; ``driftloop.ab.traffic`` reads it and routes by it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from driftloop.ab.traffic import TrafficSplit
from driftloop.storage import TrafficSplitRecord, TrafficSplitVersion, session_scope


def save_split(engine: sa.Engine, model_name: str, split: TrafficSplit, who: str) -> int:
    """Store a split for every worker and the CLI to see, as the next version; return it.

    The row is locked while its version is bumped (PostgreSQL), and versions are unique per
    model, so two saves at once never share a version.
    """
    with session_scope(engine) as session:
        record = session.get(
            TrafficSplitRecord, model_name, with_for_update=True
        ) or TrafficSplitRecord(model_name=model_name, version=0)
        now = datetime.now(UTC)
        record.staging_weight, record.shadow = split.staging_weight, split.shadow
        record.updated_by, record.updated_at = who, now
        record.version = (record.version or 0) + 1
        session.add(record)
        session.add(
            TrafficSplitVersion(
                model_name=model_name,
                version=record.version,
                staging_weight=split.staging_weight,
                shadow=split.shadow,
                saved_by=who,
                saved_at=now,
            )
        )
        return record.version
