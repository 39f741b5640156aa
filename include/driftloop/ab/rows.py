"""An A/B test's rows: the prediction log joined with feedback, and the feedback that no
prediction row carries."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from driftloop.storage import ABTest, Feedback, Prediction, session_scope


def load_rows(engine: sa.Engine, test: ABTest) -> pd.DataFrame:
    """The test's log rows (not shadows) with their feedback, if any."""
    query = (
        sa.select(
            Prediction.request_id,
            Prediction.variant,
            Prediction.model_version,
            Prediction.status,
            Prediction.output,
            Prediction.latency_ms,
            Prediction.created_at,
            Prediction.assignment,
            Feedback.value,
            Feedback.id.is_not(None).label("has_truth"),
        )
        .outerjoin(Feedback, Feedback.record_id == Prediction.record_id)
        .where(
            Prediction.model_name == test.model_name,
            Prediction.shadow.is_(False),
            Prediction.created_at >= test.started_at,
            Prediction.model_version.in_([test.production_version, test.staging_version]),
        )
        .order_by(Prediction.created_at, Prediction.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "request_id",
            "variant",
            "model_version",
            "status",
            "output",
            "latency_ms",
            "created_at",
            "assignment",
            "truth",
            "has_truth",
        ],
    )
    frame["has_truth"] = frame["has_truth"].astype(bool)
    frame["prediction"] = [
        o.get("prediction") if isinstance(o, dict) else None for o in frame["output"]
    ]
    return frame


def unmatched_feedback(engine: sa.Engine) -> int:
    """Feedback whose record id no prediction row carries (yet): lost or foreign record ids,
    or feedback that arrived before its prediction row was written."""
    with session_scope(engine) as session:
        matched = (
            sa.select(Prediction.id).where(Prediction.record_id == Feedback.record_id).exists()
        )
        return session.scalar(sa.select(sa.func.count(Feedback.id)).where(~matched)) or 0
