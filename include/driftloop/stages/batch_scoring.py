"""Batch scoring: a file of unlabelled rows answered by the Production version, with the checks
and records of ``/predict``.

Files wait in ``scoring/inbox/``. Each is read in chunks; every chunk is checked (bad rows set
aside with their reasons), predicted and appended to ``scoring/out/<file>.v<version>.predictions``
(CSV or Parquet, as it came), and its rows go to the prediction log marked ``batch``, which the
A/B test leaves out. While a Staging version exists it scores the same rows in shadow. The input
then moves to ``scoring/done/``, so nothing is scored twice; a file with no usable row moves to
``scoring/quarantine/`` beside a note of why.
"""

from __future__ import annotations

import enum
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.scoring.files import (
    FORMATS,
    AnswerWriter,
    Chunk,
    RejectWriter,
    UnreadableFile,
    chunks,
    file_format,
)
from driftloop.scoring.files import header as read_header
from driftloop.scoring.frame_checks import CheckedChunk, check_chunk, missing_columns
from driftloop.scoring.model import VersionPipeline, load_version
from driftloop.storage import BATCH, Prediction

log = logging.getLogger(__name__)


class ScoringError(RuntimeError):
    """Scoring cannot start (no such file, no Production version); nothing was moved."""


class Outcome(enum.StrEnum):
    SCORED = "scored"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class ScoringResult:
    """What became of one file."""

    outcome: Outcome
    input: Path  # where the input is now
    version: str
    rows: int = 0
    scored: int = 0
    set_aside: int = 0
    answers: Path | None = None
    rejected: Path | None = None
    shadow_version: str | None = None
    reason: str | None = None
    seconds: float = 0.0  # all of it, loading the versions included
    loop_seconds: float = 0.0  # reading, checking, predicting, writing and logging
    log_seconds: float = 0.0  # of ``loop_seconds``, spent writing the prediction log

    @property
    def rows_per_second(self) -> float:
        """Rows through the scoring loop per second (loading the versions not counted)."""
        return self.rows / self.loop_seconds if self.loop_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        """Plain values, as Airflow passes them between tasks and the CLI prints them."""
        return {
            "outcome": str(self.outcome),
            "input": str(self.input),
            "version": self.version,
            "rows": self.rows,
            "scored": self.scored,
            "set_aside": self.set_aside,
            "answers": None if self.answers is None else str(self.answers),
            "rejected": None if self.rejected is None else str(self.rejected),
            "shadow_version": self.shadow_version,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "log_seconds": round(self.log_seconds, 3),
        }


def inbox(settings: Settings) -> Path:
    return settings.storage.scoring_dir / "inbox"


def waiting_files(settings: Settings) -> list[Path]:
    """Files in the inbox, oldest first (hidden and partly copied ``.part`` files skipped)."""
    folder = inbox(settings)
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".part")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def score_inbox(settings: Settings, engine: sa.Engine) -> list[ScoringResult]:
    """Score every waiting file (see :func:`score_file`)."""
    return [score_file(settings, engine, path) for path in waiting_files(settings)]


@dataclass
class _Run:
    """The running totals of one file."""

    production: VersionPipeline
    shadow: VersionPipeline | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    rows: int = 0
    scored: int = 0
    log_seconds: float = 0.0
    first_reasons: list[str] = field(default_factory=list)


def score_file(
    settings: Settings,
    engine: sa.Engine,
    path: Path,
    out: Path | None = None,
    *,
    log_predictions: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoringResult:
    """Score ``path`` with the Production version (see the module docstring).

    A file in the inbox is moved to ``done/`` or ``quarantine/``; a file elsewhere stays where
    it is. Raises :class:`ScoringError` when scoring cannot start.
    """
    started = time.perf_counter()
    if not path.is_file():
        raise ScoringError(f"{path} does not exist or is not a file")
    if out is not None and out.suffix.lower() not in FORMATS:
        raise ScoringError(f"{out.name}: answers are written as CSV (.csv) or Parquet (.parquet)")
    client = registry.configure(settings)
    production = registry.by_alias(client, settings.model.name, registry.PRODUCTION)
    if production is None:
        raise ScoringError(
            f"model {settings.model.name!r} has no Production version to score with yet"
        )
    staging = registry.by_alias(client, settings.model.name, registry.STAGING)
    try:
        kind = file_format(path)
        columns = read_header(path, settings.data.separator)
    except UnreadableFile as exc:
        return _quarantine(settings, path, production.version, str(exc), started)
    run = _Run(
        load_version(settings, production.version),
        load_version(settings, staging.version) if staging is not None else None,
    )
    absent = missing_columns(columns, run.production.schema)
    if absent:
        reason = f"{path.name} has no column for {', '.join(map(repr, absent))}"
        return _quarantine(settings, path, production.version, reason, started)
    answers_path = out or _answers_path(settings, path, production.version, kind)
    answers_path.parent.mkdir(parents=True, exist_ok=True)
    answers = AnswerWriter(answers_path, file_format(answers_path), settings.data.separator)
    rejected = RejectWriter(answers_path.with_name(f"{path.stem}.rejected.csv"))
    logging_on = settings.scoring.log_predictions if log_predictions is None else log_predictions
    loop_started = time.perf_counter()
    try:
        for chunk in chunks(
            path, run.production.schema, settings.scoring.chunk_rows, settings.data.separator
        ):
            _score_chunk(settings, engine, run, chunk, answers, rejected, logging_on)
            if progress is not None:
                progress(run.rows)
    except UnreadableFile as exc:  # a malformed line part-way through
        answers.discard()
        rejected.discard()
        _forget(engine, run)
        return _quarantine(settings, path, production.version, str(exc), started, run.rows)
    except BaseException:
        answers.discard()
        rejected.discard()
        _forget(engine, run)  # a retry scores the file again from its first row
        raise
    if not run.scored:
        answers.discard()
        rejected.discard()
        reason = "no usable row: " + "; ".join(run.first_reasons[:5])
        return _quarantine(settings, path, production.version, reason, started, run.rows)
    result = ScoringResult(
        Outcome.SCORED,
        _settle(settings, path, "done"),
        production.version,
        rows=run.rows,
        scored=run.scored,
        set_aside=rejected.count,
        answers=answers.commit(),
        rejected=rejected.commit(),
        shadow_version=run.shadow.version if run.shadow else None,
        seconds=time.perf_counter() - started,
        loop_seconds=time.perf_counter() - loop_started,
        log_seconds=run.log_seconds,
    )
    log.info(
        "scored %s: %d of %d rows with version %s (%.0f rows/s)",
        path.name,
        result.scored,
        result.rows,
        result.version,
        result.rows_per_second,
    )
    return result


def _score_chunk(
    settings: Settings,
    engine: sa.Engine,
    run: _Run,
    piece: Chunk,
    answers: AnswerWriter,
    rejected: RejectWriter,
    logging_on: bool,
) -> None:
    schema = run.production.schema
    chunk = piece.frame
    checked = check_chunk(chunk, schema, settings.serving.max_missing_share)
    rows = chunk.index.to_numpy() + 1  # data rows counted from 1, the header not counted
    set_aside = {int(rows[i]): reasons for i, reasons in checked.reasons.items()}
    set_aside |= {row + 1: [why] for row, why in piece.malformed.items()}
    rejected.write(set_aside)
    if len(run.first_reasons) < 5:
        run.first_reasons += [
            f"row {row}: {', '.join(reasons)}" for row, reasons in sorted(set_aside.items())[:5]
        ]
    run.rows += len(chunk) + len(piece.malformed)
    if not len(checked.features):
        return
    began = time.perf_counter()
    predictions, probabilities = run.production.predict(checked.features)
    elapsed_ms = (time.perf_counter() - began) * 1000
    kept = rows[checked.usable]
    record_ids = np.char.add(f"{run.run_id}-", kept.astype(str))
    passthrough = [c for c in chunk.columns if c not in set(schema.names)]
    frame = chunk.loc[checked.usable, passthrough].reset_index(drop=True)
    frame["row"] = kept
    frame["record_id"] = record_ids
    frame["prediction"] = predictions
    for position, label in enumerate(run.production.classes or []):
        frame[f"probability_{label}"] = probabilities[:, position]
    frame["model_version"] = run.production.version
    answers.write(frame)
    run.scored += len(kept)
    if logging_on:
        log_began = time.perf_counter()
        rows_out = _log_rows(
            settings,
            run,
            run.production,
            checked,
            record_ids,
            elapsed_ms,
            (predictions, probabilities),
        )
        if run.shadow is not None:
            rows_out += _shadow_rows(settings, run, checked, record_ids)
        with engine.begin() as connection:
            connection.execute(sa.insert(Prediction), rows_out)
        run.log_seconds += time.perf_counter() - log_began


def _log_rows(
    settings: Settings,
    run: _Run,
    model: VersionPipeline,
    checked: CheckedChunk,
    record_ids: np.ndarray,
    elapsed_ms: float,
    answers: tuple[np.ndarray, np.ndarray | None],
    shadow: bool = False,
) -> list[dict[str, Any]]:
    """Prediction-log rows as ``/predict`` writes them, marked ``batch``."""
    predictions, probabilities = answers
    inputs = checked.features.astype(object).where(checked.features.notna(), None)
    names = np.asarray(checked.features.columns, dtype=object)
    now = datetime.now(UTC)
    rows = []
    for i, record in enumerate(inputs.to_dict("records")):
        output: dict[str, Any] = {"prediction": _plain(predictions[i])}
        if probabilities is not None:
            output["probabilities"] = probabilities[i].tolist()
        missing = checked.missing[i]
        rows.append(
            {
                "request_id": f"batch-{run.run_id}",
                "record_id": str(record_ids[i]),
                "model_name": settings.model.name,
                "variant": registry.STAGING if shadow else registry.PRODUCTION,
                "model_version": model.version,
                "shadow": shadow,
                "status": 200,
                "assignment": BATCH,
                "inputs": record,
                "missing": names[missing].tolist() if missing.any() else None,
                "output": output,
                "latency_ms": elapsed_ms,
                "created_at": now,
            }
        )
    return rows


def _shadow_rows(
    settings: Settings, run: _Run, checked: CheckedChunk, record_ids: np.ndarray
) -> list[dict[str, Any]]:
    """Staging's answers to the same rows; its failure is logged, never the batch's."""
    assert run.shadow is not None
    began = time.perf_counter()
    try:
        answers = run.shadow.predict(checked.features)
    except Exception as exc:  # a shadow must not fail the batch
        log.warning("shadow scoring with version %s failed: %s", run.shadow.version, exc)
        return []
    elapsed_ms = (time.perf_counter() - began) * 1000
    return _log_rows(
        settings, run, run.shadow, checked, record_ids, elapsed_ms, answers, shadow=True
    )


def _forget(engine: sa.Engine, run: _Run) -> None:
    """Remove the log rows of a run that failed part-way, so a retry does not log rows twice."""
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.delete(Prediction).where(Prediction.request_id == f"batch-{run.run_id}")
            )
    except Exception as exc:  # the database itself may be why the run failed
        log.warning("could not remove the failed run's log rows (batch-%s): %s", run.run_id, exc)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _answers_path(settings: Settings, path: Path, version: str, kind: str) -> Path:
    suffix = ".csv" if kind == "csv" else ".parquet"
    return settings.storage.scoring_dir / "out" / f"{path.stem}.v{version}.predictions{suffix}"


def _in_inbox(settings: Settings, path: Path) -> bool:
    return path.resolve().parent == inbox(settings).resolve()


def _settle(settings: Settings, path: Path, folder: str) -> Path:
    """Move an inbox file to ``folder`` (never over another file); leave any other file."""
    if not _in_inbox(settings, path):
        return path
    target = settings.storage.scoring_dir / folder
    target.mkdir(parents=True, exist_ok=True)
    destination = target / path.name
    if destination.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        destination = target / f"{path.stem}-{stamp}{path.suffix}"
    return Path(shutil.move(str(path), destination))


def _quarantine(
    settings: Settings, path: Path, version: str, reason: str, started: float, rows: int = 0
) -> ScoringResult:
    log.warning("%s not scored: %s", path.name, reason)
    where = _settle(settings, path, "quarantine")
    if where != path:
        where.with_name(where.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    return ScoringResult(
        Outcome.QUARANTINED,
        where,
        version,
        rows=rows,
        reason=reason,
        seconds=time.perf_counter() - started,
    )
