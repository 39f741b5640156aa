"""What a gate result does to the registry, and the re-gate of versions that wait for evidence.

Staging takes the ``staging`` alias (the previous Staging version is archived); a rejected
version keeps no alias; an undecided one (``insufficient_evidence``) is registered without an
alias and tagged ``pending``. Production is never moved here. When labelled batches land,
``drift_monitor`` calls :func:`regate_pending`: the same version is judged again, without new
training, on the grown holdout (every labelled row since the drift that neither model trained
on), at most ``training.gate_retries`` times; still undecided after that, it is rejected with
the reason. Each attempt is a row in ``retrain_runs`` and a step of the run's ``gate_*``
metrics in MLflow.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.data import comparable_row_keys, read_table
from driftloop.gate.statistics import GateResult, gate_metric, judge, per_row
from driftloop.stages import alerts, role_moves
from driftloop.stages.drift_check import drift_batch_time
from driftloop.stages.ingest import ACCEPTED
from driftloop.stages.retrain_steps import Decision, record
from driftloop.stages.tracking import logged_training_data
from driftloop.storage import Batch, RetrainRun, session_scope
from driftloop.vocabulary import GateOutcome, GateTag, RetrainDecision, Trigger

log = logging.getLogger(__name__)

TAG_OF = {  # the registry's gate tag of each outcome
    GateOutcome.STAGING: GateTag.STAGING,
    GateOutcome.REJECTED: GateTag.REJECTED,
    GateOutcome.INSUFFICIENT_EVIDENCE: GateTag.PENDING,
}


def pending_versions(client: Any, name: str) -> list[registry.VersionInfo]:
    """Versions registered without an alias that wait for a re-gate, oldest first."""
    found = client.search_model_versions(
        f"name='{name}' and tags.`{registry.GATE}`='{GateTag.PENDING}'"
    )
    return sorted(
        (registry.get(client, name, v.version) for v in found), key=lambda v: int(v.version)
    )


def apply(
    settings: Settings,
    engine: sa.Engine,
    client: Any,
    result: GateResult,
    *,
    version: str,
    production_version: str,
    run_id: str,
    trigger: Trigger,
    drift_check_id: int | None,
    details: dict[str, Any] | None = None,
) -> Decision:
    """Move ``version`` as ``result`` says, log the numbers to its run, record the decision."""
    name, retries = settings.model.name, settings.training.gate_retries
    if result.outcome is GateOutcome.INSUFFICIENT_EVIDENCE and result.attempt > retries:
        result = replace(
            result,
            outcome=GateOutcome.REJECTED,
            reason=f"still undecided after {result.attempt} gate attempts "
            f"(training.gate_retries is {retries}): {result.reason}",
        )
    if result.outcome is GateOutcome.STAGING:
        previous = registry.by_alias(client, name, registry.STAGING)
        role_moves.set_role(client, name, version, registry.STAGING)
        if previous is not None and previous.version != version:
            role_moves.archive(client, name, previous.version)
    client.set_model_version_tag(name, version, registry.GATE, TAG_OF[result.outcome])
    client.set_model_version_tag(name, version, registry.GATE_REASON, result.reason)
    client.set_model_version_tag(name, version, registry.GATE_ATTEMPT, str(result.attempt))
    _log_to_run(client, run_id, result)
    decision = Decision(
        RetrainDecision(result.outcome),
        f"{result.reason} ({result.summary()})",
        version,
        production_version,
        result.metric,
        result.challenger_score,
        result.production_score,
        run_id,
        evidence=result,
    )
    log.info("gate: version %s %s: %s", version, decision.outcome, decision.reason)
    decision = record(engine, name, decision, trigger, drift_check_id, details)
    return _alert_rejection(settings, decision, regate=trigger == Trigger.REGATE)


def _alert_rejection(settings: Settings, decision: Decision, regate: bool) -> Decision:
    """A rejection (gate or re-gate, from a DAG or the CLI) is a ``retrain_rejected`` alert."""
    if decision.outcome == GateOutcome.REJECTED:
        alerts.send(
            settings,
            "retrain_rejected",
            f"version {decision.model_version} rejected at "
            f"{'its re-gate' if regate else 'the gate'}: "
            f"{decision.reason}",
            decision.to_dict(),
        )
    return decision


def latest_gates(engine: sa.Engine, model: str) -> dict[str, str]:
    """Per version of ``model``, its latest gate attempt's numbers in one line (``driftloop
    models``)."""
    with session_scope(engine) as session:
        rows = session.scalars(
            sa.select(RetrainRun)
            .where(RetrainRun.model_name == model, RetrainRun.gate_attempt.is_not(None))
            .order_by(RetrainRun.id)
        ).all()
        return {row.model_version: _gate_line(row) for row in rows if row.model_version}


def _gate_line(row: RetrainRun) -> str:
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.4f}"

    return (
        f"{row.metric} {row.challenger_score or 0:.4f} "
        f"vs Production {row.production_score or 0:.4f}, "
        f"advantage {number(row.gate_difference)} "
        f"[{number(row.gate_low)}, {number(row.gate_high)}], "
        f"margin {row.gate_margin:g}, alpha {row.gate_alpha:g}, {row.gate_rows} rows, "
        f"{row.gate_test}, attempt {row.gate_attempt}"
    )


def _log_to_run(client: Any, run_id: str, result: GateResult) -> None:
    """The attempt's numbers as metrics (one step per attempt) and a JSON record."""
    numbers = {
        "rows": result.rows,
        "difference": result.difference,
        "low": result.low,
        "high": result.high,
        "margin": result.margin,
        "alpha": result.alpha,
        "attempt": result.attempt,
        "challenger_score": result.challenger_score,
        "production_score": result.production_score,
    }
    for key, value in numbers.items():
        if value is not None:
            client.log_metric(run_id, f"gate_{key}", float(value), step=result.attempt)
    client.set_tag(run_id, "driftloop.gate_test", result.test)
    client.log_dict(run_id, result.to_dict(), f"gate/attempt-{result.attempt}.json")


# --- re-gate -------------------------------------------------------------------------------


def regate_pending(settings: Settings, engine: sa.Engine) -> list[Decision]:
    """Judge every pending version again if its holdout grew since its last attempt."""
    client = registry.configure(settings)
    name = settings.model.name
    production = registry.by_alias(client, name, registry.PRODUCTION)
    if production is None:
        return []
    decisions = []
    for pending in pending_versions(client, name):
        last = _last_attempt(engine, name, pending.version)
        if last is None:
            log.warning("version %s is tagged pending but has no gate record", pending.version)
            continue
        holdout = grown_holdout(settings, engine, pending, production, last.drift_check_id)
        if len(holdout) <= (last.gate_rows or 0):
            log.info(
                "version %s: no new labelled rows since its last gate (%d)",
                pending.version,
                len(holdout),
            )
            continue
        decisions.append(_regate(settings, engine, client, pending, production, holdout, last))
    return decisions


def _regate(
    settings: Settings,
    engine: sa.Engine,
    client: Any,
    pending: registry.VersionInfo,
    production: registry.VersionInfo,
    holdout: pd.DataFrame,
    last: RetrainRun,
) -> Decision:
    import mlflow.sklearn

    metric = last.metric or gate_metric(settings)
    challenger_model = mlflow.sklearn.load_model(pending.model_uri)
    production_model = mlflow.sklearn.load_model(production.model_uri)
    result = judge(
        per_row(challenger_model, holdout, settings, metric),
        per_row(production_model, holdout, settings, metric),
        metric,
        settings.training,
        attempt=(last.gate_attempt or 1) + 1,
    )
    return apply(
        settings,
        engine,
        client,
        result,
        version=pending.version,
        production_version=production.version,
        run_id=pending.run_id,
        trigger=Trigger.REGATE,
        drift_check_id=last.drift_check_id,
        details={"previous_rows": last.gate_rows, "previous_retrain_id": last.id},
    )


def _last_attempt(engine: sa.Engine, model: str, version: str) -> RetrainRun | None:
    with session_scope(engine) as session:
        row = session.scalar(
            sa.select(RetrainRun)
            .where(
                RetrainRun.model_name == model,
                RetrainRun.model_version == version,
                RetrainRun.gate_attempt.is_not(None),
            )
            .order_by(RetrainRun.id.desc())
            .limit(1)
        )
        if row is not None:
            session.expunge(row)
        return row


def grown_holdout(
    settings: Settings,
    engine: sa.Engine,
    challenger: registry.VersionInfo,
    production: registry.VersionInfo,
    drift_check_id: int | None,
) -> pd.DataFrame:
    """Every labelled row of the accepted batches since the drift (without a drift check: the
    newest ``training.window_batches``) that neither model trained on, exact copies included."""
    columns = [*settings.feature_columns, settings.data.target]
    with session_scope(engine) as session:
        query = sa.select(Batch.path).where(
            Batch.model_name == settings.model.name,
            Batch.status == ACCEPTED,
            Batch.labelled.is_(True),
        )
        drift_time = drift_batch_time(session, drift_check_id)
        if drift_time is not None:
            query = query.where(Batch.batch_time >= drift_time)
        else:
            query = query.order_by(Batch.batch_time.desc(), Batch.id.desc()).limit(
                settings.training.window_batches
            )
        paths = list(session.scalars(query))
    if not paths:
        return pd.DataFrame(columns=columns)
    rows = pd.concat(
        [read_table(Path(p), settings.data)[columns] for p in sorted(paths)], ignore_index=True
    ).dropna(subset=[settings.data.target])
    seen = np.concatenate(
        [
            comparable_row_keys(logged_training_data(version.run_id), columns)
            for version in (challenger, production)
        ]
    )
    return rows[~np.isin(comparable_row_keys(rows, columns), seen)].reset_index(drop=True)
