"""Ingestion: landing files become accepted or quarantined batches, recorded in the database.

Files are copied to their new folder before the database commits and removed from the landing
folder only after it, so a crash at any point leaves every byte somewhere a retry finds it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.data import file_digest
from driftloop.ingestion.stream import parse_batch_time
from driftloop.ingestion.validation import ValidationResult, validate_file
from driftloop.storage import Batch, BatchValidation, session_scope, utcnow
from driftloop.vocabulary import BatchStatus

ACCEPTED, QUARANTINED, DUPLICATE = (
    BatchStatus.ACCEPTED,
    BatchStatus.QUARANTINED,
    BatchStatus.DUPLICATE,
)
_DATA_SUFFIXES = {".csv", ".parquet", ".txt", ".tsv"}


class IngestError(ValueError):
    """A request ingestion cannot carry out; the message says why."""


@dataclass(frozen=True)
class IngestOutcome:
    name: str
    status: str
    batch_id: int
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_rows: int | None = None


def landing_files(settings: Settings) -> list[Path]:
    """Files waiting in the landing folder, oldest name first (names carry their time)."""
    folder = settings.storage.landing_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _DATA_SUFFIXES)


def ingest_landing(settings: Settings, engine: sa.Engine) -> list[IngestOutcome]:
    """Validate and record every file in the landing folder."""
    return [ingest_file(path, settings, engine) for path in landing_files(settings)]


def ingest_file(path: Path, settings: Settings, engine: sa.Engine) -> IngestOutcome:
    """Validate one file; record it as a batch unless its content is already a batch."""
    digest = file_digest(path)
    with session_scope(engine) as session:
        known = session.scalar(
            sa.select(Batch).where(Batch.model_name == settings.model.name, Batch.digest == digest)
        )
        if known is not None:
            path.unlink()  # its bytes are stored already, under the known batch
            return IngestOutcome(
                path.name,
                DUPLICATE,
                known.id,
                notes=[f"same content as batch {known.id} ({known.name})"],
            )
        result = validate_file(path, settings)
        status = ACCEPTED if result.ok else QUARANTINED
        destination = _place(path, settings, status, digest)
        now = utcnow()
        batch = Batch(
            model_name=settings.model.name,
            name=path.name,
            path=str(destination),
            batch_time=parse_batch_time(path.name) or _mtime(path),
            received_at=now,
            attempts=1,
        )
        outcome = _record_validation(session, batch, digest, status, result, now)
    path.unlink()
    return outcome


def reprocess(
    batch_ref: str, settings: Settings, engine: sa.Engine, fixed_file: Path | None = None
) -> IngestOutcome:
    """Validate a quarantined batch again, after a person fixed its file (in place or given)."""
    with session_scope(engine) as session:
        batch = find_batch(session, batch_ref, settings.model.name)
        if batch.status != QUARANTINED:
            raise IngestError(
                f"batch {batch.id} ({batch.name}) is {batch.status}; "
                "only quarantined batches are reprocessed"
            )
        current = Path(batch.path)
        if fixed_file is not None:
            if not fixed_file.is_file():
                raise IngestError(f"fixed file {fixed_file} does not exist")
            staged = current.with_name(current.name + ".fixed")
            shutil.copyfile(fixed_file, staged)
            staged.replace(current)
        if not current.is_file():
            raise IngestError(
                f"the quarantined file {current} is missing; pass the fixed file with --file"
            )
        digest = file_digest(current)
        other = session.scalar(
            sa.select(Batch).where(
                Batch.model_name == batch.model_name, Batch.digest == digest, Batch.id != batch.id
            )
        )
        if other is not None:
            raise IngestError(
                f"the fixed file has the same content as batch {other.id} ({other.name}); "
                "nothing to reprocess"
            )
        result = validate_file(current, settings)
        status = ACCEPTED if result.ok else QUARANTINED
        now = utcnow()
        if status == ACCEPTED:
            destination = _place(current, settings, ACCEPTED, digest)
            batch.path = str(destination)
        batch.attempts += 1
        outcome = _record_validation(session, batch, digest, status, result, now)
    if status == ACCEPTED:
        current.unlink()
    return outcome


def _record_validation(
    session: sa.orm.Session,
    batch: Batch,
    digest: str,
    status: str,
    result: ValidationResult,
    now: datetime,
) -> IngestOutcome:
    """Write a validation's verdict onto the batch and append it to the batch's history."""
    batch.digest, batch.status = digest, status
    batch.reasons, batch.notes = result.reasons, result.notes
    batch.n_rows = result.rows if result.ok else None
    batch.labelled, batch.validated_at = result.labelled, now
    session.add(batch)
    session.flush()
    session.add(
        BatchValidation(
            model_name=batch.model_name,
            batch_id=batch.id,
            digest=digest,
            status=status,
            reasons=result.reasons,
            validated_at=now,
        )
    )
    return IngestOutcome(batch.name, status, batch.id, result.reasons, result.notes, batch.n_rows)


def find_batch(session: sa.orm.Session, batch_ref: str | int, model: str) -> Batch:
    """A batch of ``model`` by id (a number, or digits as text from the CLI or a DAG param) or
    by file name; another model's batch is not found."""
    text = str(batch_ref).strip()
    query = sa.select(Batch).where(
        Batch.model_name == model, Batch.id == int(text) if text.isdigit() else Batch.name == text
    )
    batch = session.scalar(query)
    if batch is None:
        raise IngestError(f"no batch with id or name {batch_ref!r}")
    return batch


def list_batches(
    engine: sa.Engine,
    status: str | None = None,
    limit: int | None = None,
    *,
    model: str | None = None,
) -> list[Batch]:
    """The batches of ``model``, oldest first (every model's when None: a tool's look at the
    whole database; the loop always names its model)."""
    with session_scope(engine) as session:
        query = sa.select(Batch).order_by(Batch.batch_time, Batch.id)
        if model is not None:
            query = query.where(Batch.model_name == model)
        if status is not None:
            query = query.where(Batch.status == status)
        if limit is not None:
            query = query.limit(limit)
        return list(session.scalars(query))


def _place(path: Path, settings: Settings, status: str, digest: str) -> Path:
    """Copy ``path`` to the folder for ``status``, never overwriting another batch's file."""
    folder = (
        settings.storage.accepted_dir if status == ACCEPTED else settings.storage.quarantine_dir
    )
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / path.name
    if (
        destination.exists()
        and destination.resolve() != path.resolve()
        and file_digest(destination) != digest
    ):
        destination = folder / f"{path.stem}-{digest[:12]}{path.suffix}"
    if destination.resolve() != path.resolve():
        staged = destination.with_name(destination.name + ".part")
        shutil.copyfile(path, staged)
        staged.replace(destination)
    return destination


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
