"""Feedback: the true value of a predicted record, stored once per record and model.

Kept in its own table and joined with the prediction log at analysis time
(``driftloop.ab.rows``), so feedback may arrive before its prediction row is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from driftloop.storage import Feedback, session_scope


class DuplicateFeedback(ValueError):
    """Feedback for this record id was given before."""


def record_feedback(engine: sa.Engine, model_name: str, record_id: str, value: Any) -> None:
    """Store the true value of one of ``model_name``'s records; a second one for the same
    record is refused (another model's record of the same id is another record)."""
    try:
        with session_scope(engine) as session:
            session.add(
                Feedback(
                    model_name=model_name,
                    record_id=record_id,
                    value=value,
                    created_at=datetime.now(UTC),
                )
            )
    except sa.exc.IntegrityError:
        raise DuplicateFeedback(
            f"feedback for record {record_id!r} of model {model_name!r} was already given"
        ) from None
