"""driftloop's own tables (SQLAlchemy), the engine and the transaction every part uses.

Their schema's revisions (Alembic) are :mod:`driftloop.schema`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from driftloop.vocabulary import Assignment


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp with time zone that always reads back aware and in UTC: SQLite keeps no
    zone and hands back naive datetimes for what was stored in UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Batch(Base):
    """One data batch, identified by its content digest; the same file twice is one batch."""

    __tablename__ = "batches"
    # one model's batches: the same file given to two models is a batch of each
    __table_args__ = (sa.UniqueConstraint("model_name", "digest", name="uq_batches_model_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), index=True)
    digest: Mapped[str] = mapped_column(sa.String(64))
    path: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    reasons: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    notes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    n_rows: Mapped[int | None] = mapped_column(sa.Integer)
    labelled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    batch_time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    validated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)
    # Who is checking this batch for drift, and since when (driftloop.stages.claims): parallel
    # checkers claim a batch before checking it, so each batch is checked exactly once.
    drift_claimed_by: Mapped[str | None] = mapped_column(sa.String(255))
    drift_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchValidation(Base):
    """Every validation attempt of a batch, so reprocessing keeps the history of what was wrong."""

    __tablename__ = "batch_validations"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20))
    reasons: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    validated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReferenceProfileRecord(Base):
    """A stored reference profile; ``active`` marks the one used when no model provides one."""

    __tablename__ = "reference_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # initial, reset or model
    source: Mapped[str] = mapped_column(sa.Text)
    path: Mapped[str] = mapped_column(sa.Text)
    digest: Mapped[str] = mapped_column(sa.String(64))
    data_digest: Mapped[str] = mapped_column(sa.String(64))
    rows: Mapped[int] = mapped_column(sa.Integer)
    model_version: Mapped[str | None] = mapped_column(sa.String(50))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftCheck(Base):
    """The drift check of one batch; one per batch, so re-running a batch changes nothing."""

    __tablename__ = "drift_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    batch_id: Mapped[int] = mapped_column(
        sa.ForeignKey("batches.id", ondelete="CASCADE"), unique=True
    )
    profile_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reference_profiles.id"))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    drift_share: Mapped[float | None] = mapped_column(sa.Float)
    drifted_features: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    target_drift: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    model_version: Mapped[str | None] = mapped_column(sa.String(50))
    error: Mapped[str | None] = mapped_column(sa.Text)
    json_path: Mapped[str | None] = mapped_column(sa.Text)
    html_path: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The newer drift check a retrain took instead of this one (several drift events waited).
    merged_into: Mapped[int | None] = mapped_column(sa.Integer)


class TrafficCheck(Base):
    """The drift check of one window of served traffic (the prediction log's inputs), one per
    model and window, so a window is never checked twice. Kept apart from ``drift_checks``:
    those are batches, which retrains read; a traffic window starts no retrain
    (``driftloop.stages.traffic_check``)."""

    __tablename__ = "traffic_checks"
    __table_args__ = (
        sa.UniqueConstraint("model_name", "window_start", name="uq_traffic_checks_model_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(sa.Integer)  # served records tested
    profile_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reference_profiles.id"))
    model_version: Mapped[str | None] = mapped_column(sa.String(50))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    drift_share: Mapped[float | None] = mapped_column(sa.Float)
    drifted_features: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    multivariate_flag: Mapped[bool | None] = mapped_column(sa.Boolean)
    # what was left out: shadow and batch-scored rows, records without inputs
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    json_path: Mapped[str | None] = mapped_column(sa.Text)
    html_path: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetrainRun(Base):
    """One retraining attempt or re-gate and its decision: production (bootstrap), staging,
    rejected, insufficient_evidence (the version waits, tagged pending) or skipped."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    trigger: Mapped[str] = mapped_column(sa.String(20))  # drift, decay, manual, bootstrap, regate
    drift_check_id: Mapped[int | None] = mapped_column(sa.Integer)
    decision: Mapped[str] = mapped_column(sa.String(30), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    model_version: Mapped[str | None] = mapped_column(sa.String(50))
    production_version: Mapped[str | None] = mapped_column(sa.String(50))
    metric: Mapped[str | None] = mapped_column(sa.String(30))
    challenger_score: Mapped[float | None] = mapped_column(sa.Float)
    production_score: Mapped[float | None] = mapped_column(sa.Float)
    mlflow_run_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The gate's numbers (driftloop.gate.statistics.GateResult); empty for skips and bootstrap.
    gate_test: Mapped[str | None] = mapped_column(sa.String(60))
    gate_rows: Mapped[int | None] = mapped_column(sa.Integer)
    gate_difference: Mapped[float | None] = mapped_column(sa.Float)
    gate_low: Mapped[float | None] = mapped_column(sa.Float)
    gate_high: Mapped[float | None] = mapped_column(sa.Float)
    gate_margin: Mapped[float | None] = mapped_column(sa.Float)
    gate_alpha: Mapped[float | None] = mapped_column(sa.Float)
    gate_attempt: Mapped[int | None] = mapped_column(sa.Integer)


class TrafficSplitRecord(Base):
    """How a registered model's traffic is split; read by every server worker and the CLI."""

    __tablename__ = "traffic_splits"

    model_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    staging_weight: Mapped[float] = mapped_column(sa.Float)
    shadow: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(sa.String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # bumped by every save; each prediction row records the version it was routed under
    version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")


class TrafficSplitVersion(Base):
    """Every saved split, kept: when each version took effect, so the A/B analysis can tell a
    row routed under the split then in force from one a lagging replica routed under an older
    one."""

    __tablename__ = "traffic_split_versions"
    __table_args__ = (sa.UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    version: Mapped[int] = mapped_column(sa.Integer)
    staging_weight: Mapped[float] = mapped_column(sa.Float)
    shadow: Mapped[bool] = mapped_column(sa.Boolean)
    saved_by: Mapped[str] = mapped_column(sa.String(255))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())


# How a logged record got its variant (``Prediction.assignment``); batch-scored rows are always
# Production's (Staging's in shadow) and never count in an A/B test
RANDOM, STICKY, FORCED, BATCH = (
    Assignment.RANDOM,
    Assignment.STICKY,
    Assignment.FORCED,
    Assignment.BATCH,
)


class Prediction(Base):
    """One predicted record per variant that predicted it (shadow rows marked), or one failed
    request (``status`` >= 400, no record)."""

    __tablename__ = "predictions"
    __table_args__ = (sa.Index("ix_predictions_variant_version", "variant", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    record_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    variant: Mapped[str | None] = mapped_column(sa.String(20))
    model_version: Mapped[str | None] = mapped_column(sa.String(50))
    shadow: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[int] = mapped_column(sa.Integer, default=200)
    assignment: Mapped[str | None] = mapped_column(sa.String(10))  # RANDOM, STICKY, FORCED or BATCH
    inputs: Mapped[dict | None] = mapped_column(sa.JSON)
    missing: Mapped[list[str] | None] = mapped_column(sa.JSON)  # features sent null or absent
    output: Mapped[dict | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    # the traffic split's version the serving replica routed by (None: logged before 0011)
    split_version: Mapped[int | None] = mapped_column(sa.Integer)
    # a sticky request's client key, hashed (ab.traffic.client_hash): the A/B test's cluster
    # (None: random or forced, or logged before 0015)
    client_key: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)


class Feedback(Base):
    """The true value of a predicted record; joined to predictions at analysis time, so it may
    arrive before its prediction row is written."""

    __tablename__ = "feedback"
    # a record id names a record of one model: two models may each have a record "42"
    __table_args__ = (
        sa.UniqueConstraint("model_name", "record_id", name="uq_feedback_model_record"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    record_id: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[Any] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ABTest(Base):
    """One A/B test: the pair (Production version, Staging version) from the moment Staging
    receives traffic. A new Staging version starts a new test."""

    __tablename__ = "ab_tests"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    production_version: Mapped[str] = mapped_column(sa.String(50))
    staging_version: Mapped[str] = mapped_column(sa.String(50))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)  # running or how it ended
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(sa.Text)


class ABEvaluation(Base):
    """One look at a running test: its numbers, the decision taken, and the report."""

    __tablename__ = "ab_evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    test_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_tests.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(sa.String(20))  # promote, reject, continue, inconclusive
    reason: Mapped[str] = mapped_column(sa.Text)
    metric: Mapped[str] = mapped_column(sa.String(20))
    production_value: Mapped[float | None] = mapped_column(sa.Float)
    staging_value: Mapped[float | None] = mapped_column(sa.Float)
    production_samples: Mapped[int] = mapped_column(sa.Integer)
    staging_samples: Mapped[int] = mapped_column(sa.Integer)
    p_value: Mapped[float | None] = mapped_column(sa.Float)
    statistics: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    json_path: Mapped[str | None] = mapped_column(sa.Text)
    html_path: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)


class AuditRecord(Base):
    """Who moved which version where, when and why: every promotion, rejection and rollback,
    by ``ab_evaluate`` or by a person, with its evidence."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(20), index=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    production_before: Mapped[str | None] = mapped_column(sa.String(50))
    production_after: Mapped[str | None] = mapped_column(sa.String(50))
    staging_before: Mapped[str | None] = mapped_column(sa.String(50))
    actor: Mapped[str] = mapped_column(sa.String(255))
    reason: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    test_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)


class Approval(Base):
    """A decision of ``ab_evaluate`` that waits for a person (``ab.approval: required``): at
    most one pending per A/B test; who answered, what and why once it is settled."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    test_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_tests.id", ondelete="CASCADE"))
    evaluation_id: Mapped[int | None] = mapped_column(sa.Integer)
    decision: Mapped[str] = mapped_column(sa.String(20))  # promote, reject or inconclusive
    reason: Mapped[str] = mapped_column(sa.Text)
    production_version: Mapped[str | None] = mapped_column(sa.String(50))
    staging_version: Mapped[str] = mapped_column(sa.String(50))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    dag_run_id: Mapped[str | None] = mapped_column(sa.String(255))
    responded_by: Mapped[str | None] = mapped_column(sa.String(255))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    audit_id: Mapped[int | None] = mapped_column(sa.Integer)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # when the Airflow run that asks stops waiting (the timeout the approval event carried)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a person's answer that came after the approval was settled: kept, never carried out
    late_answer: Mapped[str | None] = mapped_column(sa.Text)


class PerformanceReferenceRecord(Base):
    """Where a version's out-of-sample predictions are stored (``driftloop.performance``)."""

    __tablename__ = "performance_references"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    model_version: Mapped[str | None] = mapped_column(sa.String(50), index=True)
    source: Mapped[str] = mapped_column(sa.String(30))  # gate holdout or cross-validation
    rows: Mapped[int] = mapped_column(sa.Integer)
    metrics: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    path: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceCheck(Base):
    """Production's performance on one batch or one day: realized (labelled rows, judged
    against the version's out-of-sample reference), estimated before labels, and whether its
    predictions drifted. A decay is announced once (``announced``) by whichever DAG sees it."""

    __tablename__ = "performance_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255))
    model_version: Mapped[str] = mapped_column(sa.String(50), index=True)
    scope: Mapped[str] = mapped_column(sa.String(10))  # batch or day
    batch_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[str | None] = mapped_column(sa.String(10))  # YYYY-MM-DD (UTC)
    source: Mapped[str] = mapped_column(sa.String(20))  # batch, labels or day
    rows: Mapped[int] = mapped_column(sa.Integer, default=0)  # labelled rows measured
    excluded_rows: Mapped[int] = mapped_column(sa.Integer, default=0)  # trained on: left out
    metric: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[float | None] = mapped_column(sa.Float)
    low: Mapped[float | None] = mapped_column(sa.Float)
    high: Mapped[float | None] = mapped_column(sa.Float)
    reference_value: Mapped[float | None] = mapped_column(sa.Float)
    reference_rows: Mapped[int | None] = mapped_column(sa.Integer)
    p_value: Mapped[float | None] = mapped_column(sa.Float)
    decayed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    announced: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    estimated_value: Mapped[float | None] = mapped_column(sa.Float)
    estimated_low: Mapped[float | None] = mapped_column(sa.Float)
    estimated_high: Mapped[float | None] = mapped_column(sa.Float)
    estimated_drop: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    prediction_drift: Mapped[bool | None] = mapped_column(sa.Boolean)
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder and foreign keys switched on."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # the server's log writers and the CLI or DAGs read and write at once: WAL lets readers go
    # on during a write, and NORMAL sync is safe with WAL (a power cut can lose the last commit)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on any error."""
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
