"""The rows performance is measured on: each batch's kept predictions (with the truth when
labels came, inline or late, and which rows the version trained on), and ``/feedback``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.storage import Batch, Feedback, PerformanceCheck, Prediction, session_scope
from driftloop.task import labels, task_of
from driftloop.vocabulary import Role

PREDICTION, TRUTH, TRAINED_ON = "_prediction", "_truth", "_trained_on"


def predictions_path(settings: Settings, batch_id: int, version: str) -> Path:
    folder = settings.storage.home / "performance" / "batches"
    return folder / f"batch-{batch_id:06d}-v{version}.csv"


def write_rows(frame: pd.DataFrame, path: Path) -> None:
    """Write kept predictions whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".part")
    frame.to_csv(staged, index=False)
    staged.replace(path)


def read_predictions(path: Path, classifier: bool) -> pd.DataFrame:
    """Kept predictions, with class labels read back as text (6 stays "6", not 6.0)."""
    text = {PREDICTION: str, TRUTH: str} if classifier else {}
    return pd.read_csv(path, dtype=text, keep_default_na=True)


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def kept_rows_of_day(
    settings: Settings, engine: sa.Engine, version: str, day: date, classifier: bool
) -> pd.DataFrame:
    """The kept predictions of the day's batches the version predicted, with their truth."""
    start, end = _bounds(day)
    with session_scope(engine) as session:
        batch_ids = session.scalars(
            sa.select(PerformanceCheck.batch_id)
            .join(Batch, Batch.id == PerformanceCheck.batch_id)
            .where(
                PerformanceCheck.model_name == settings.model.name,
                PerformanceCheck.model_version == version,
                PerformanceCheck.scope == "batch",
                Batch.batch_time >= start,
                Batch.batch_time < end,
            )
            .distinct()
        ).all()
    frames = []
    for batch_id in sorted(batch_ids):
        path: Path = predictions_path(settings, batch_id, version)
        if path.is_file():
            kept = read_predictions(path, classifier)
            if TRUTH in kept.columns:
                frames.append(kept[[PREDICTION, TRUTH, TRAINED_ON]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def feedback_rows(settings: Settings, engine: sa.Engine, version: str, day: date) -> pd.DataFrame:
    """The version's answered Production records of the day that have feedback."""
    start, end = _bounds(day)
    query = (
        sa.select(Prediction.output, Feedback.value)
        .join(
            Feedback,
            sa.and_(
                Feedback.model_name == Prediction.model_name,
                Feedback.record_id == Prediction.record_id,
            ),
        )
        .where(
            Prediction.model_name == settings.model.name,
            Prediction.variant == Role.PRODUCTION,
            Prediction.model_version == version,
            Prediction.shadow.is_(False),
            Prediction.status == 200,
            Prediction.created_at >= start,
            Prediction.created_at < end,
        )
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return pd.DataFrame()
    task = task_of(settings)
    truth = pd.Series([v for _, v in rows], dtype=object)
    predicted = pd.Series([(o or {}).get("prediction") for o, _ in rows], dtype=object)
    usable = task.usable_truth(truth) & predicted.notna()
    truth, predicted = truth[usable], predicted[usable]
    if task.categorical_target:
        truth, predicted = labels(truth), labels(predicted)
    else:
        truth, predicted = truth.astype(float).to_numpy(), predicted.astype(float).to_numpy()
    return pd.DataFrame({PREDICTION: predicted, TRUTH: truth, TRAINED_ON: False})
