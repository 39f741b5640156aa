"""The loop at a glance, as plain JSON-ready data: what the Airflow plugin's page and API show.

One read of driftloop's database and the MLflow registry: which versions serve and how traffic
is split, the latest drift checks and the drift share over time, the running A/B test with its
numbers, guardrails, decisions and audit log, waiting approvals, and the latest retrain runs.
Reports are served by id only (``report_path``), never by a path a request names.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from driftloop.config import Settings
from driftloop.storage import (
    ABEvaluation,
    ABTest,
    Batch,
    DriftCheck,
    RetrainRun,
    session_scope,
)
from driftloop.vocabulary import ABTestStatus, Role

log = logging.getLogger(__name__)
ReportKind = Literal["drift", "ab"]
DRIFT_ROWS = 10
SHARE_POINTS = 200
RETRAIN_ROWS = 10


def overview(settings: Settings, engine: sa.Engine) -> dict[str, Any]:
    """Everything the page shows, newest first where there is a list."""
    from driftloop.ab.traffic import load_split
    from driftloop.stages import approval, promotion

    name = settings.model.name
    split = load_split(
        engine, name, settings.serving.default_staging_weight, settings.serving.default_shadow
    )
    return {
        "model": name,
        "mlflow_ui": mlflow_ui(settings),
        "versions": versions(settings),
        "traffic": {"staging_weight": split.staging_weight, "shadow": split.shadow},
        "drift": {
            "checks": drift_checks(engine, name),
            "share_over_time": drift_share(engine, name),
        },
        "ab": ab_test(settings, engine),
        "approvals": [view.to_dict() for view in approval.recent(engine, 5, name)],
        "audit": promotion.history(engine, name, 10),
        "retrains": retrain_runs(engine, name),
    }


def mlflow_ui(settings: Settings) -> str | None:
    """The tracking server's UI, when MLflow is a server (not an embedded SQLite store)."""
    uri = settings.mlflow.tracking_uri
    return uri.rstrip("/") if uri and uri.startswith(("http://", "https://")) else None


def versions(settings: Settings) -> dict[str, Any]:
    """The Production and Staging versions with their gate tags and, with a server, links; an
    unreachable registry is said (``error``), not fatal: the rest of the page still reads."""
    try:
        return _versions(settings)
    except Exception as exc:  # MLflow's errors are many; any of them only hides the versions
        log.warning("overview: the MLflow registry did not answer: %s", exc)
        return {Role.PRODUCTION: None, Role.STAGING: None, "error": f"MLflow registry: {exc}"}


def _versions(settings: Settings) -> dict[str, Any]:
    from driftloop import registry

    name, ui = settings.model.name, mlflow_ui(settings)
    found: dict[str, dict[str, Any] | None] = {Role.PRODUCTION: None, Role.STAGING: None}
    store = settings.mlflow_tracking_uri.removeprefix("sqlite:///")
    if store != settings.mlflow_tracking_uri and not Path(store).exists():
        return found  # an embedded store not made yet: no version to read, and none created
    client = registry.reader(settings)
    for role in (Role.PRODUCTION, Role.STAGING):
        info = registry.by_alias(client, name, role)
        found[role] = (
            None
            if info is None
            else {
                "version": info.version,
                "run_id": info.run_id,
                "gate": info.tags.get(registry.GATE),
                "gate_reason": info.tags.get(registry.GATE_REASON),
                "url": f"{ui}/#/models/{name}/versions/{info.version}" if ui else None,
                "run_url": f"{ui}/#/runs/{info.run_id}" if ui and info.run_id else None,
            }
        )
    return found


def drift_checks(engine: sa.Engine, model: str, limit: int = DRIFT_ROWS) -> list[dict[str, Any]]:
    """``model``'s latest drift checks: batch, verdict, share and drifted features, report id."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(DriftCheck, Batch.name)
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .where(DriftCheck.model_name == model)
            .order_by(DriftCheck.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": check.id,
                "batch": batch,
                "status": check.status,
                "drift_share": check.drift_share,
                "drifted_features": list(check.drifted_features or []),
                "model_version": check.model_version,
                "has_report": bool(check.html_path),
                "created_at": _iso(check.created_at),
            }
            for check, batch in rows
        ]


def drift_share(engine: sa.Engine, model: str, limit: int = SHARE_POINTS) -> list[dict[str, Any]]:
    """``model``'s share of drifted features per check, oldest first (checks that measured
    one)."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(
                DriftCheck.id, DriftCheck.created_at, DriftCheck.drift_share, DriftCheck.status
            )
            .where(DriftCheck.model_name == model, DriftCheck.drift_share.is_not(None))
            .order_by(DriftCheck.id.desc())
            .limit(limit)
        ).all()
    return [
        {"id": i, "at": _iso(at), "share": share, "status": status}
        for i, at, share, status in reversed(rows)
    ]


def ab_test(settings: Settings, engine: sa.Engine) -> dict[str, Any] | None:
    """The running test (else the latest one) with its latest look and its decision history."""
    with session_scope(engine) as session:
        test = shown_test(session, settings.model.name)
        if test is None:
            return None
        looks = session.scalars(
            sa.select(ABEvaluation)
            .where(ABEvaluation.test_id == test.id)
            .order_by(ABEvaluation.id.desc())
            .limit(20)
        ).all()
        latest = looks[0] if looks else None
        ab = settings.ab
        return {
            "id": test.id,
            "status": test.status,
            "production_version": test.production_version,
            "staging_version": test.staging_version,
            "started_at": _iso(test.started_at),
            "ended_at": _iso(test.ended_at),
            "reason": test.reason,
            "latest": None if latest is None else _look(latest),
            "guardrails": {
                "max_error_rate": ab.max_error_rate,
                "max_p99_ms": ab.max_p99_ms,
                "min_requests": ab.guardrail_min_requests,
            },
            "approval": ab.approval,
            "decisions": [
                {
                    "id": look.id,
                    "decision": look.decision,
                    "reason": look.reason,
                    "p_value": look.p_value,
                    "samples": [look.production_samples, look.staging_samples],
                    "has_report": bool(look.html_path),
                    "created_at": _iso(look.created_at),
                }
                for look in looks
            ],
        }


def shown_test(session: Session, model: str) -> ABTest | None:
    """The A/B test a person wants to see for ``model``: the running one, else the latest."""
    return session.scalars(
        sa.select(ABTest)
        .where(ABTest.model_name == model)
        .order_by((ABTest.status == ABTestStatus.RUNNING).desc(), ABTest.id.desc())
        .limit(1)
    ).first()


def _look(look: ABEvaluation) -> dict[str, Any]:
    """One evaluation's numbers per variant (as stored with it) and its sequential test."""
    stats = look.statistics or {}
    variants = {}
    for role in (Role.PRODUCTION, Role.STAGING):
        numbers = stats.get(role) or {}
        estimate = (numbers.get("metrics") or {}).get(look.metric) or {}
        variants[role] = {
            "version": numbers.get("version"),
            "requests": numbers.get("requests"),
            "answered": numbers.get("answered"),
            "with_feedback": numbers.get("with_feedback"),
            "failed_requests": numbers.get("failed_requests"),
            "error_rate": numbers.get("error_rate"),
            "p99_ms": (numbers.get("latency_ms") or {}).get("p99"),
            "metric": estimate.get("value"),
            "low": estimate.get("low"),
            "high": estimate.get("high"),
        }
    return {
        "id": look.id,
        "metric": look.metric,
        "decision": look.decision,
        "reason": look.reason,
        "p_value": look.p_value,
        "sequential": stats.get("sequential"),
        "srm": stats.get("srm") or [],  # sample-ratio checks (ab.srm); none before issue 27
        "variants": variants,
        "created_at": _iso(look.created_at),
    }


def retrain_runs(engine: sa.Engine, model: str, limit: int = RETRAIN_ROWS) -> list[dict[str, Any]]:
    """``model``'s latest retraining attempts and how their gate decided."""
    with session_scope(engine) as session:
        rows = session.scalars(
            sa.select(RetrainRun)
            .where(RetrainRun.model_name == model)
            .order_by(RetrainRun.id.desc())
            .limit(limit)
        )
        return [
            {
                "id": run.id,
                "trigger": run.trigger,
                "decision": run.decision,
                "reason": run.reason,
                "model_version": run.model_version,
                "metric": run.metric,
                "challenger_score": run.challenger_score,
                "production_score": run.production_score,
                "gate_low": run.gate_low,
                "gate_high": run.gate_high,
                "created_at": _iso(run.created_at),
            }
            for run in rows
        ]


def report_path(engine: sa.Engine, kind: ReportKind, report_id: int, model: str) -> Path:
    """The HTML report of ``model``'s drift check or A/B evaluation ``report_id``; LookupError
    if none (another model's report included)."""
    with session_scope(engine) as session:
        if kind == "drift":
            row = session.get(DriftCheck, report_id)
            owner = row.model_name if row is not None else None
        else:
            row = session.get(ABEvaluation, report_id)
            owner = session.get(ABTest, row.test_id).model_name if row is not None else None
        found = row is not None and owner == model and row.html_path
        path = Path(row.html_path) if found else None
    if path is None or not path.is_file():
        raise LookupError(f"no {kind} report #{report_id}")
    return path


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
