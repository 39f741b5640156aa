"""The retraining flow: bootstrap, then assemble, train, evaluate, register, gate.

Each step is one function the ``retrain`` DAG calls as one task; the steps hand each other
the frozen results of :mod:`~driftloop.stages.retrain_steps` (paths, ids and numbers, never
frames), which Airflow passes between tasks as dicts. :func:`retrain` runs the same steps one
after the other in one process (``driftloop retrain``), and :func:`bootstrap` trains, logs and
registers the first version with the same train and register steps. The registry is touched
only by ``register`` and ``gate``, after training and evaluation succeeded, so a failed training
leaves it as it was. Whether to retrain and on which rows is in ``training_data``; the gate's
statistics are in :mod:`driftloop.gate.statistics`; what a result does to the registry, and the
re-gate of a version that waits for evidence, in ``gating``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.data import read_table
from driftloop.ingestion.stream import build_reference, reference_path
from driftloop.stages import role_moves
from driftloop.stages.gating import apply
from driftloop.stages.reference_profiles import profile_from_frame, store_profile
from driftloop.stages.retrain_steps import (
    Assembly,
    Decision,
    Registered,
    Scored,
    Skip,
    Trained,
    record,
)
from driftloop.stages.tracking import data_digest
from driftloop.stages.training_data import assemble
from driftloop.storage import DriftCheck, ReferenceProfileRecord, session_scope
from driftloop.vocabulary import GateTag, RetrainDecision, Role, Trigger

log = logging.getLogger(__name__)


class RetrainError(RuntimeError):
    """A retraining request that cannot go on; the message says why."""


def retrain(
    settings: Settings,
    engine: sa.Engine,
    drift_check_id: int | None = None,
    trigger: Trigger = Trigger.MANUAL,
) -> tuple[Decision, Trained | None]:
    """Every step here, in order, as the ``retrain`` DAG runs them as tasks. Returns the
    decision and the trained challenger (None when the attempt was skipped)."""
    assembly = assemble(settings, engine, drift_check_id, trigger)
    if isinstance(assembly, Skip):
        return assembly.decision, None
    trained = train_and_log(settings, engine, assembly)
    registered = register(settings, engine, evaluate(settings, trained))
    return gate(settings, engine, registered), trained


def bootstrap(settings: Settings, engine: sa.Engine) -> Decision:
    """Train on the initial reference split and register the first version as Production.

    The only way a version that was never Production or Staging enters Production.
    """
    client = _client(settings)
    name = settings.model.name
    current = registry.by_alias(client, name, Role.PRODUCTION)
    if current is not None:
        raise RetrainError(
            f"{name} already has Production version {current.version}; "
            "bootstrap only registers the first version"
        )
    path = reference_path(settings)
    if not path.is_file():
        path, _rows = build_reference(settings)
    frame = read_table(path, settings.data)[[*settings.feature_columns, settings.data.target]]
    assembly = Assembly(str(path), None, data_digest(frame), None, None, Trigger.BOOTSTRAP)
    trained = _train_and_log(settings, engine, assembly, frame, None)
    version = _register(settings, engine, client, trained)
    role_moves.set_role(client, name, version, Role.PRODUCTION)
    client.set_model_version_tag(name, version, registry.GATE, GateTag.PRODUCTION)
    decision = Decision(
        RetrainDecision.PRODUCTION,
        "bootstrapped from the initial reference split",
        version,
        None,
        trained.metric,
        trained.holdout_score,
        None,
        trained.run_id,
    )
    return record(engine, name, decision, Trigger.BOOTSTRAP, None)


# --- the steps after ``assemble`` ----------------------------------------------------------


def train_and_log(settings: Settings, engine: sa.Engine, assembly: Assembly) -> Trained:
    """Run AutoML on the assembled training set and log the run (nothing registered yet)."""
    holdout = pd.read_csv(assembly.holdout_path) if assembly.holdout_path else None
    return _train_and_log(settings, engine, assembly, pd.read_csv(assembly.train_path), holdout)


def evaluate(settings: Settings, trained: Trained) -> Scored:
    """Score challenger and Production row by row on the same unseen holdout; judge them."""
    import mlflow.sklearn

    from driftloop.gate.statistics import gate_metric, judge, per_row

    registry.configure(settings)
    assembly = trained.assembly
    holdout = pd.read_csv(assembly.holdout_path)
    challenger = mlflow.sklearn.load_model(trained.model_uri)
    production = mlflow.sklearn.load_model(
        registry.model_uri(settings.model.name, assembly.production_version)
    )
    metric = gate_metric(settings)
    result = judge(
        per_row(challenger, holdout, settings, metric),
        per_row(production, holdout, settings, metric),
        metric,
        settings.training,
    )
    log.info("gate holdout: %s", result.summary())
    return Scored(trained, result)


def register(settings: Settings, engine: sa.Engine, scored: Scored) -> Registered:
    """Register the challenger as a new version with its lineage and profile."""
    return Registered(scored, _register(settings, engine, _client(settings), scored.trained))


def gate(settings: Settings, engine: sa.Engine, registered: Registered) -> Decision:
    """Staging, rejected, or registered without an alias and tagged pending (see ``gatekeeper``)."""
    trained = registered.trained
    assembly = trained.assembly
    return apply(
        settings,
        engine,
        _client(settings),
        registered.scored.result,
        version=registered.version,
        production_version=assembly.production_version,
        run_id=trained.run_id,
        trigger=assembly.trigger,
        drift_check_id=assembly.drift_check_id,
        details={
            "model": trained.model_name,
            **(
                {"merged_drift_checks": list(assembly.merged_drift_checks)}
                if assembly.merged_drift_checks
                else {}
            ),
        },
    )


# --- helpers -------------------------------------------------------------------------------


def _client(settings: Settings) -> Any:
    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    return client


def _train_and_log(
    settings: Settings,
    engine: sa.Engine,
    assembly: Assembly,
    frame: pd.DataFrame,
    holdout: pd.DataFrame | None,
) -> Trained:
    """Train on ``frame``; log the run with the drift reference profile of the version the
    run becomes (the rows since the drift, ``assembly.reference_rows``, else ``frame``), and
    store that profile (its object handed on, not read back from MLflow)."""
    from driftloop.stages.tracking import log_training_run
    from driftloop.training.automl import train

    registry.configure(settings)
    trained = train(frame, settings)
    reference = pd.read_csv(assembly.reference_path) if assembly.reference_path else frame
    profile = profile_from_frame(reference, settings, assembly.profile_source)
    run_id, model_uri = log_training_run(
        trained,
        frame,
        holdout,
        settings,
        assembly.digest,
        assembly.run_params,
        profile,
        assembly.run_name,
    )
    stored = store_profile(settings, engine, profile, "model")
    reference_id = _store_reference(settings, engine, trained.pipeline, frame, holdout)
    return Trained(
        assembly,
        run_id,
        model_uri,
        trained.metric,
        trained.model_name,
        trained.holdout_metrics.get(trained.metric),
        stored.id,
        reference_id,
    )


def _store_reference(
    settings: Settings,
    engine: sa.Engine,
    pipeline: Any,
    frame: pd.DataFrame,
    holdout: pd.DataFrame | None,
) -> int | None:
    """The version's out-of-sample predictions (``driftloop.performance.reference``), kept for
    its performance monitoring. A model that cannot be cross-validated still registers: it is
    then monitored without a reference (measured, not judged), and the log says why."""
    from driftloop.performance.reference import out_of_sample
    from driftloop.stages.performance_reference import store_reference

    try:
        return store_reference(settings, engine, out_of_sample(pipeline, frame, holdout, settings))
    except Exception as exc:
        log.warning("no out-of-sample reference for this version: %s", exc)
        return None


def _register(settings: Settings, engine: sa.Engine, client: Any, trained: Trained) -> str:
    """The version of ``trained``: registered with its lineage tags, its profile attached;
    on a retry after a partial failure the version already registered, never a duplicate."""
    import mlflow

    name, assembly = settings.model.name, trained.assembly
    same = registry.by_digest(client, name, assembly.digest)
    if same is not None:
        return same.version
    tags = {
        registry.DATA_DIGEST: assembly.digest,
        **_drift_lineage(engine, assembly.drift_check_id),
        **{f"driftloop.{k}": v for k, v in assembly.merge_details.items()},
    }
    version = str(mlflow.register_model(trained.model_uri, name, tags=tags).version)
    if trained.reference_id is not None:
        from driftloop.stages.performance_reference import attach_version

        attach_version(engine, trained.reference_id, version)
    if trained.profile_id is not None:
        with session_scope(engine) as session:
            session.get(ReferenceProfileRecord, trained.profile_id).model_version = version
        client.set_model_version_tag(name, version, registry.PROFILE_ID, str(trained.profile_id))
    return version


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
