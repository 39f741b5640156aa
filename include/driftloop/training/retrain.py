"""The retraining flow: bootstrap, then assemble, train, evaluate, register, gate.

Each step is one function the ``retrain`` DAG calls as one task; they exchange small
JSON-ready dicts (paths, ids, scores, the gate's result), never frames. The registry is touched
only by ``register`` and ``gate``, after training and evaluation succeeded, so a failed training
leaves it as it was. The gate's statistics are in ``gate``; what a result does to the registry,
and the re-gate of a version that waits for evidence, in ``gatekeeper``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.data import read_table, row_keys
from driftloop.drift.monitor import drift_batch_time, profile_from_frame, store_profile
from driftloop.ingest import ACCEPTED
from driftloop.storage import Batch, DriftCheck, RetrainRun, session_scope, utcnow
from driftloop.stream import build_reference, reference_path
from driftloop.training.gate import GateResult

log = logging.getLogger(__name__)

STAGING, REJECTED, SKIPPED, PRODUCTION = "staging", "rejected", "skipped", "production"


class RetrainError(RuntimeError):
    """A retraining request that cannot go on; the message says why."""


@dataclass(frozen=True)
class Decision:
    """The end of a retraining attempt, as stored in ``retrain_runs`` and shown to people."""

    decision: str
    reason: str
    model_version: str | None = None
    production_version: str | None = None
    metric: str | None = None
    challenger_score: float | None = None
    production_score: float | None = None
    run_id: str | None = None
    retrain_id: int | None = None
    evidence: GateResult | None = None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["evidence"] = self.evidence.to_dict() if self.evidence else None
        return values


def _client(settings: Settings):
    client = registry.configure(settings)
    registry.ensure_registered_model(client, settings.model.name)
    return client


def record(
    engine: sa.Engine,
    decision: Decision,
    trigger: str,
    drift_check_id: int | None,
    details: dict[str, Any] | None = None,
) -> Decision:
    """Store a decision (and the gate's numbers, if any) in ``retrain_runs``; return it with its id."""
    evidence = decision.evidence
    with session_scope(engine) as session:
        row = RetrainRun(
            trigger=trigger,
            drift_check_id=drift_check_id,
            decision=decision.decision,
            reason=decision.reason,
            model_version=decision.model_version,
            production_version=decision.production_version,
            metric=decision.metric,
            challenger_score=decision.challenger_score,
            production_score=decision.production_score,
            mlflow_run_id=decision.run_id,
            details=details or {},
            created_at=utcnow(),
            **(evidence.stored_columns() if evidence else {}),
        )
        session.add(row)
        session.flush()
        return replace(decision, retrain_id=row.id)


# --- bootstrap ---------------------------------------------------------------------------


def bootstrap(settings: Settings, engine: sa.Engine) -> Decision:
    """Train on the initial reference split and register the first version as Production.

    The only way a version that was never Production or Staging enters Production.
    """
    from driftloop.training.automl import train

    client = _client(settings)
    current = registry.by_alias(client, settings.model.name, registry.PRODUCTION)
    if current is not None:
        raise RetrainError(
            f"{settings.model.name} already has Production version {current.version}; "
            "bootstrap only registers the first version"
        )
    path = reference_path(settings)
    if not path.is_file():
        path, _rows = build_reference(settings)
    frame = read_table(path, settings.data)[[*settings.feature_columns, settings.data.target]]
    trained = train(frame, settings)
    version, run_id = _log_and_register(
        settings, engine, client, trained, frame, None, {"trigger": "bootstrap"}, "bootstrap", {}
    )
    registry.set_role(client, settings.model.name, version, registry.PRODUCTION)
    client.set_model_version_tag(settings.model.name, version, registry.GATE, PRODUCTION)
    return record(
        engine,
        Decision(
            PRODUCTION,
            "bootstrapped from the initial reference split",
            version,
            None,
            trained.metric,
            trained.holdout_metrics.get(trained.metric),
            None,
            run_id,
        ),
        "bootstrap",
        None,
    )


# --- retrain steps ---------------------------------------------------------------------------


def assemble(
    settings: Settings, engine: sa.Engine, drift_check_id: int | None = None, trigger: str = "drift"
) -> dict[str, Any]:
    """Decide whether to retrain; if so, write the training set and the gate holdout.

    Returns ``{"skip": Decision}`` or the paths and lineage the next steps need.
    """
    client = _client(settings)
    name = settings.model.name
    production = registry.by_alias(client, name, registry.PRODUCTION)

    def skip(reason: str) -> dict[str, Any]:
        log.info("retraining skipped: %s", reason)
        decision = Decision(
            SKIPPED, reason, production_version=production.version if production else None
        )
        return {"skip": record(engine, decision, trigger, drift_check_id).to_dict()}

    if production is None:
        return skip(
            f"{name} has no Production version, so there is nothing to compare with: run `driftloop bootstrap` first"
        )
    staging = registry.by_alias(client, name, registry.STAGING)
    if staging is not None and not settings.training.replace_staging:
        return skip(
            f"Staging version {staging.version} is still under A/B test (training.replace_staging is false)"
        )
    from driftloop.training.gatekeeper import pending_versions

    waiting = pending_versions(client, name)
    if waiting:
        return skip(
            f"version {waiting[0].version} awaits more labelled rows for its gate (pending); "
            "drift_monitor re-gates it as batches land"
        )
    if settings.training.cooldown_minutes > 0:
        with session_scope(engine) as session:
            last = session.scalar(
                sa.select(RetrainRun.created_at)
                .where(RetrainRun.decision.in_([STAGING, REJECTED]))
                .order_by(RetrainRun.id.desc())
            )
        if last is not None and utcnow() - _aware(last) < timedelta(
            minutes=settings.training.cooldown_minutes
        ):
            return skip(
                f"the last retrain was less than {settings.training.cooldown_minutes:g} minutes ago (training.cooldown_minutes)"
            )

    base = _production_training_data(settings, client, production)
    recent, drift_time = _recent_batches(settings, engine, drift_check_id)
    if recent.empty:
        return skip("no accepted, labelled batches to learn from")
    train_frame, holdout = _split_holdout(recent, base, drift_time, settings)
    from driftloop.training.tracking import data_digest

    digest = data_digest(train_frame)
    same = registry.by_digest(client, name, digest)
    if same is not None:
        return skip(f"version {same.version} was trained on exactly this data")
    folder = settings.storage.home / "training" / f"{utcnow():%Y%m%dT%H%M%S%f}"
    folder.mkdir(parents=True, exist_ok=True)
    train_frame.to_csv(folder / "train.csv", index=False)
    holdout.to_csv(folder / "holdout.csv", index=False)
    log.info(
        "training set: %d rows (%d from Production's data); gate holdout: %d rows",
        len(train_frame),
        len(base),
        len(holdout),
    )
    return {
        "train_path": str(folder / "train.csv"),
        "holdout_path": str(folder / "holdout.csv"),
        "digest": digest,
        "production_version": production.version,
        "drift_check_id": drift_check_id,
        "trigger": trigger,
    }


def train_and_log(
    settings: Settings, engine: sa.Engine, assembly: dict[str, Any]
) -> dict[str, Any]:
    """Run AutoML on the assembled training set and log the run (nothing registered yet)."""
    from driftloop.training.automl import train
    from driftloop.training.tracking import log_training_run

    registry.configure(settings)
    train_frame = pd.read_csv(assembly["train_path"])
    holdout = pd.read_csv(assembly["holdout_path"])
    trained = train(train_frame, settings)
    profile = profile_from_frame(
        train_frame, settings, f"training data of run {assembly['digest'][:12]}"
    )
    with tempfile.TemporaryDirectory() as folder:
        profile_path = Path(folder) / "profile.npz"
        profile.save(profile_path)
        run_id, model_uri = log_training_run(
            trained,
            train_frame,
            holdout,
            settings,
            assembly["digest"],
            {
                "trigger": assembly["trigger"],
                "drift_check_id": assembly["drift_check_id"],
                "production_version": assembly["production_version"],
            },
            profile_path,
            f"retrain-{assembly['trigger']}",
        )
    return {
        **assembly,
        "run_id": run_id,
        "model_uri": model_uri,
        "metric": trained.metric,
        "model_name": trained.model_name,
    }


def evaluate(settings: Settings, trained: dict[str, Any]) -> dict[str, Any]:
    """Score challenger and Production row by row on the same unseen holdout; judge them."""
    import mlflow.sklearn

    from driftloop.training.gate import gate_metric, judge, per_row

    registry.configure(settings)
    holdout = pd.read_csv(trained["holdout_path"])
    challenger = mlflow.sklearn.load_model(trained["model_uri"])
    production = mlflow.sklearn.load_model(
        f"models:/{settings.model.name}/{trained['production_version']}"
    )
    metric = gate_metric(settings)
    result = judge(
        per_row(challenger, holdout, settings, metric),
        per_row(production, holdout, settings, metric),
        metric,
        settings.training,
    )
    log.info("gate holdout: %s", result.summary())
    return {
        **trained,
        "challenger_score": result.challenger_score,
        "production_score": result.production_score,
        "gate_metric": metric,
        "gate_result": result.to_dict(),
    }


def register(settings: Settings, engine: sa.Engine, evaluated: dict[str, Any]) -> dict[str, Any]:
    """Register the challenger as a new version with its lineage and profile."""
    import mlflow

    client = _client(settings)
    name = settings.model.name
    same = registry.by_digest(client, name, evaluated["digest"])
    if same is not None:  # a retry after a partial failure: reuse, never duplicate
        return {**evaluated, "version": same.version}
    drift_tags = _drift_lineage(engine, evaluated.get("drift_check_id"))
    version = mlflow.register_model(
        evaluated["model_uri"], name, tags={registry.DATA_DIGEST: evaluated["digest"], **drift_tags}
    ).version
    _attach_profile(settings, engine, client, str(version), evaluated["run_id"])
    return {**evaluated, "version": str(version)}


def gate(settings: Settings, engine: sa.Engine, registered: dict[str, Any]) -> Decision:
    """Staging, rejected, or registered without an alias and tagged pending (see ``gatekeeper``)."""
    from driftloop.training.gatekeeper import apply

    return apply(
        settings,
        engine,
        _client(settings),
        GateResult.from_dict(registered["gate_result"]),
        version=registered["version"],
        production_version=registered["production_version"],
        run_id=registered["run_id"],
        trigger=registered["trigger"],
        drift_check_id=registered.get("drift_check_id"),
        details={"model": registered.get("model_name")},
    )


# --- helpers -------------------------------------------------------------------------------


def _log_and_register(
    settings, engine, client, trained, frame, holdout, params, run_name, tags
) -> tuple[str, str]:
    import mlflow

    from driftloop.training.tracking import data_digest, log_training_run

    digest = data_digest(frame)
    profile = profile_from_frame(frame, settings, run_name)
    with tempfile.TemporaryDirectory() as folder:
        profile_path = Path(folder) / "profile.npz"
        profile.save(profile_path)
        run_id, model_uri = log_training_run(
            trained, frame, holdout, settings, digest, params, profile_path, run_name
        )
    version = str(
        mlflow.register_model(
            model_uri, settings.model.name, tags={registry.DATA_DIGEST: digest, **tags}
        ).version
    )
    _attach_profile(settings, engine, client, version, run_id)
    return version, run_id


def _attach_profile(
    settings: Settings, engine: sa.Engine, client, version: str, run_id: str
) -> None:
    """Store the version's reference profile (logged with its run) for drift checks."""
    import mlflow

    from driftloop.drift.profile import ReferenceProfile

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="profile/profile.npz", dst_path=folder
        )
        profile = ReferenceProfile.load(Path(local))
    record_ = store_profile(settings, engine, profile, "model", model_version=version)
    client.set_model_version_tag(settings.model.name, version, registry.PROFILE_ID, str(record_.id))


def _production_training_data(
    settings: Settings, client, production: registry.VersionInfo
) -> pd.DataFrame:
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            run_id=production.run_id, artifact_path="training_data/train.csv", dst_path=folder
        )
        return pd.read_csv(local)


def _recent_batches(
    settings: Settings, engine: sa.Engine, drift_check_id: int | None
) -> tuple[pd.DataFrame, Any]:
    """Rows of the newest accepted, labelled batches (window), with each row's batch time."""
    with session_scope(engine) as session:
        drift_time = drift_batch_time(session, drift_check_id)
        rows = session.execute(
            sa.select(Batch.path, Batch.batch_time)
            .where(Batch.status == ACCEPTED, Batch.labelled.is_(True))
            .order_by(Batch.batch_time.desc(), Batch.id.desc())
            .limit(settings.training.window_batches)
        ).all()
    columns = [*settings.feature_columns, settings.data.target]
    frames = []
    for path, batch_time in reversed(rows):
        frame = read_table(Path(path), settings.data)[columns].dropna(subset=[settings.data.target])
        frames.append(frame.assign(_batch_time=_aware(batch_time)))
    recent = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*columns, "_batch_time"])
    )
    return recent, _aware(drift_time) if drift_time is not None else None


def _split_holdout(
    recent: pd.DataFrame, base: pd.DataFrame, drift_time, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gate holdout: the newest ``holdout_share`` of the rows since the drift; Production
    never saw them and the challenger does not train on them (nor on exact copies of them).
    The share is of the rows since the drift, not of all recent rows, so the challenger always
    keeps most of the new data to learn from."""
    since = recent if drift_time is None else recent[recent["_batch_time"] >= drift_time]
    if since.empty:
        since = recent
    n_holdout = min(len(since), max(1, math.ceil(settings.training.holdout_share * len(since))))
    holdout = since.iloc[len(since) - n_holdout :]
    rest = recent.drop(index=holdout.index)
    columns = [*settings.feature_columns, settings.data.target]
    holdout, rest = holdout[columns], rest[columns]
    train_frame = pd.concat([base[columns], rest], ignore_index=True)
    # row hashes depend on the dtype (6 and 6.0 differ): compare in the training set's dtypes,
    # or a column one CSV typed as integers and the other as floats lets copies through
    holdout_keys = row_keys(holdout.astype(train_frame.dtypes.to_dict()))
    train_frame = train_frame[~np.isin(row_keys(train_frame), holdout_keys)]
    return train_frame.reset_index(drop=True), holdout.reset_index(drop=True)


def _drift_lineage(engine: sa.Engine, drift_check_id: int | None) -> dict[str, str]:
    if drift_check_id is None:
        return {}
    with session_scope(engine) as session:
        check = session.get(DriftCheck, drift_check_id)
        if check is None:
            return {}
        return {
            registry.DRIFT_REPORT: str(check.id),
            registry.DRIFT_BATCH: str(check.batch_id),
            "driftloop.drift_report_path": check.html_path or "",
        }


def _aware(moment):
    from datetime import UTC

    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)
