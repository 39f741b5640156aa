"""Late labels: a labels file joined to a batch's kept predictions on ``data.id_column``.

The batch's own file is never touched (its digest is its identity); the truth goes into the
kept predictions, and the batch's realized metrics are checked again. A file that does not fit
(no id column, ids twice, ids the batch does not hold, values a regression cannot use) is
refused whole, with the reason, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import read_table
from driftloop.performance.reference import load_reference
from driftloop.performance.rows import TRUTH, predictions_path, read_predictions, write_rows
from driftloop.stages.ingest import ACCEPTED, IngestError, find_batch
from driftloop.stages.performance_check import BatchPerformance, check_day, realized_of, store_check
from driftloop.storage import PerformanceCheck, session_scope
from driftloop.task import labels, task_of


@dataclass(frozen=True)
class Labelled:
    batch_id: int
    labels: int  # rows of the file applied
    replaced: int  # rows that had a different truth before
    check: BatchPerformance


def label_batch(
    settings: Settings, engine: sa.Engine, batch_ref: str, labels_file: Path
) -> Labelled:
    """Join ``labels_file`` (id column and target) to the batch's predictions and check the
    batch's realized performance again."""
    id_column, target = settings.data.id_column, settings.data.target
    if not id_column:
        raise IngestError(
            "data.id_column is not set: late labels join a batch's rows on it; set it to the "
            "column that identifies a row in the batch files"
        )
    with session_scope(engine) as session:
        batch = find_batch(session, batch_ref, settings.model.name)
        if batch.status != ACCEPTED:
            raise IngestError(f"batch {batch.id} ({batch.name}) is {batch.status}, not accepted")
        first = session.execute(
            sa.select(
                PerformanceCheck.model_version,
                PerformanceCheck.estimated_value,
                PerformanceCheck.estimated_low,
                PerformanceCheck.estimated_high,
            )
            .where(PerformanceCheck.batch_id == batch.id, PerformanceCheck.source == "batch")
            .order_by(PerformanceCheck.id.desc())
            .limit(1)
        ).first()
        batch_id, batch_day = batch.id, batch.batch_time.date()
    version = first.model_version if first else None
    if version is None:
        raise IngestError(
            f"batch {batch_id} has not been predicted by a Production version yet "
            "(drift_monitor does it when it checks the batch): label it after its check"
        )
    path = predictions_path(settings, batch_id, version)
    classifier = task_of(settings).categorical_target
    kept = read_predictions(path, classifier)
    if id_column not in kept.columns:
        raise IngestError(
            f"batch {batch_id}'s rows carry no {id_column!r} column (data.id_column), so labels "
            "cannot be joined to them"
        )
    incoming = _read_labels(settings, labels_file, id_column, target, classifier)
    ids = kept[id_column].astype(str)
    if ids.duplicated().any():
        raise IngestError(f"batch {batch_id} holds some {id_column} values twice: cannot join")
    unknown = sorted(set(incoming.index) - set(ids))
    if unknown:
        raise IngestError(
            f"{len(unknown)} {id_column} value(s) of {labels_file} are not in batch {batch_id} "
            f"(first: {unknown[:3]}); nothing was stored"
        )
    truth = kept[TRUTH] if TRUTH in kept.columns else pd.Series(None, index=kept.index)
    new = ids.map(incoming)
    given = new.notna()
    before = truth.where(truth.notna(), None)
    replaced = int((given & before.notna() & (before.astype(str) != new.astype(str))).sum())
    kept[TRUTH] = new.where(given, truth).to_numpy()
    write_rows(kept, path)
    result = BatchPerformance(batch_id, version, len(kept), 0.0)
    result.realized = realized_of(settings, kept, load_reference(settings, engine, version))
    if first.estimated_value is not None and result.realized is not None:
        realized = result.realized.metrics["accuracy"].value
        inside = first.estimated_low <= realized <= first.estimated_high
        result.notes.append(
            f"estimated before labels {first.estimated_value:.4f} (band {first.estimated_low:.4f}"
            f" to {first.estimated_high:.4f}); realized {realized:.4f}: "
            f"{'inside' if inside else 'outside'} the band, error "
            f"{realized - first.estimated_value:+.4f}"
        )
    store_check(settings, engine, result, "batch", batch_id=batch_id, source="labels")
    check_day(settings, engine, version, batch_day)  # the batch's day gains these labels too
    return Labelled(batch_id, int(given.sum()), replaced, result)


def _read_labels(
    settings: Settings, path: Path, id_column: str, target: str, classifier: bool
) -> pd.Series:
    """The file's truth per id (as text), checked."""
    if not path.is_file():
        raise IngestError(f"labels file {path} does not exist")
    try:
        frame = read_table(path, settings.data)
    except (ValueError, OSError) as exc:
        raise IngestError(f"labels file {path} cannot be read: {exc}") from None
    missing = [c for c in (id_column, target) if c not in frame.columns]
    if missing:
        raise IngestError(f"labels file {path} lacks column(s) {missing}")
    frame = frame[[id_column, target]].dropna(subset=[target])
    if frame.empty:
        raise IngestError(f"labels file {path} holds no label")
    ids = frame[id_column].astype(str)
    if ids.duplicated().any():
        twice = sorted(set(ids[ids.duplicated()]))[:3]
        raise IngestError(f"labels file {path} gives some {id_column} twice (first: {twice})")
    if classifier:
        values = pd.Series(labels(frame[target]), index=ids.to_numpy(), dtype=object)
    else:
        numbers = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(numbers).all():
            raise IngestError(f"labels file {path}: a regression's labels are finite numbers")
        values = pd.Series(numbers, index=ids.to_numpy())
    return values
