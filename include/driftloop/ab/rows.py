"""An A/B test's rows: the prediction log joined with feedback, and the feedback that no
prediction row carries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.storage import ABTest, Feedback, Prediction, TrafficSplitVersion, session_scope


def load_rows(engine: sa.Engine, test: ABTest, shadow: bool = False) -> pd.DataFrame:
    """The test's log rows (not shadows, unless ``shadow``: the paired design pairs them) with
    their feedback, if any, routed under the traffic split in force when they were served
    (:func:`routed_in_force`)."""
    shadows = sa.true() if shadow else Prediction.shadow.is_(False)
    query = (
        sa.select(
            Prediction.request_id,
            Prediction.record_id,
            Prediction.shadow,
            Prediction.variant,
            Prediction.model_version,
            Prediction.status,
            Prediction.output,
            Prediction.latency_ms,
            Prediction.created_at,
            Prediction.assignment,
            Prediction.split_version,
            Prediction.client_key,
            Feedback.value,
            Feedback.id.is_not(None).label("has_truth"),
        )
        .outerjoin(
            Feedback,
            sa.and_(
                Feedback.model_name == Prediction.model_name,
                Feedback.record_id == Prediction.record_id,
            ),
        )
        .where(
            Prediction.model_name == test.model_name,
            shadows,
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
            "record_id",
            "shadow",
            "variant",
            "model_version",
            "status",
            "output",
            "latency_ms",
            "created_at",
            "assignment",
            "split_version",
            "client",
            "truth",
            "has_truth",
        ],
    )
    frame = frame[routed_in_force(engine, test.model_name, frame)].reset_index(drop=True)
    frame["has_truth"] = frame["has_truth"].astype(bool)
    frame["prediction"] = [
        o.get("prediction") if isinstance(o, dict) else None for o in frame["output"]
    ]
    return frame


def routed_in_force(engine: sa.Engine, model_name: str, rows: pd.DataFrame) -> pd.Series:
    """Whether each row (``split_version``, ``created_at``) was routed under the split version
    in force when it was logged: the newest saved at or before that moment (0 before any save).

    A row routed under an older version comes from a replica that had not polled the change
    yet; counting it would put a sticky client in both arms. Rows logged before versions were
    recorded (``split_version`` missing) are kept. Replicas on several hosts need clocks in
    step to well under ``serving.poll_seconds``.
    """
    if rows.empty:
        return pd.Series(dtype=bool, index=rows.index)
    with engine.connect() as connection:
        saved = connection.execute(
            sa.select(TrafficSplitVersion.saved_at, TrafficSplitVersion.version)
            .where(TrafficSplitVersion.model_name == model_name)
            .order_by(TrafficSplitVersion.version)
        ).all()
    logged = pd.to_datetime(rows["created_at"], utc=True).to_numpy(dtype="datetime64[ns]")
    times = pd.to_datetime([t for t, _ in saved], utc=True).to_numpy(dtype="datetime64[ns]")
    versions = np.array([0] + [v for _, v in saved])
    in_force = versions[np.searchsorted(times, logged, side="right")]
    routed = rows["split_version"]
    return routed.isna() | (routed.to_numpy(dtype=float, na_value=np.nan) == in_force)


def unmatched_feedback(engine: sa.Engine, model_name: str) -> int:
    """``model_name``'s feedback whose record id none of its prediction rows carries (yet):
    lost or foreign record ids, or feedback that arrived before its prediction row."""
    with session_scope(engine) as session:
        matched = (
            sa.select(Prediction.id)
            .where(
                Prediction.model_name == Feedback.model_name,
                Prediction.record_id == Feedback.record_id,
            )
            .exists()
        )
        return (
            session.scalar(
                sa.select(sa.func.count(Feedback.id)).where(
                    Feedback.model_name == model_name, ~matched
                )
            )
            or 0
        )
