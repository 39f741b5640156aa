"""Moving Staging to Production and back, by ``ab_evaluate`` or by a person, with an audit
record (who, when, why, evidence) for every move.

The order of registry calls keeps a Production version at every moment, so a server polling
the aliases never finds none: the new version takes the ``production`` alias first, and only
then does the old one lose its own or get archived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from driftloop import registry
from driftloop.config import Settings
from driftloop.stages import alerts, role_moves
from driftloop.storage import AuditRecord, session_scope
from driftloop.vocabulary import Action

ALERTS = {  # the alert event of each move
    Action.PROMOTE: "promoted",
    Action.REJECT: "rejected",
    Action.INCONCLUSIVE: "inconclusive",
    Action.ROLLBACK: "rolled_back",
    Action.DECLINED: "approval_declined",
    Action.EXPIRED: "approval_expired",
    Action.ANSWERED_LATE: "approval_answered_late",
}


@dataclass(frozen=True)
class Move:
    """What one action did to the registry."""

    action: Action
    production_before: str | None
    production_after: str | None
    staging_before: str | None
    audit_id: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def roles(settings: Settings) -> tuple[str | None, str | None]:
    """The (Production, Staging) version numbers now."""
    return _roles(registry.configure(settings), settings.model.name)


def _roles(client: Any, name: str) -> tuple[str | None, str | None]:
    production = registry.by_alias(client, name, registry.PRODUCTION)
    staging = registry.by_alias(client, name, registry.STAGING)
    return (production and production.version, staging and staging.version)


def _with_staging(
    settings: Settings, verb: str, expected: tuple[str | None, str] | None
) -> tuple[Any, str, str | None, str]:
    """The client, model name and both roles, for a move that needs a Staging version. With
    ``expected`` (the pair a person confirmed or a test evaluated), the move happens only if
    the roles are still that pair: a version staged meanwhile is never moved untested."""
    client = registry.configure(settings)
    name = settings.model.name
    production, staging = _roles(client, name)
    if staging is None:
        raise registry.RegistryError(f"{name} has no Staging version to {verb}")
    if expected is not None and (production, staging) != expected:
        raise registry.RegistryError(
            f"the roles of {name} changed: Production v{production}, Staging v{staging}, "
            f"not v{expected[0]} and v{expected[1]}; nothing was moved, decide again"
        )
    return client, name, production, staging


def promote(
    settings: Settings,
    engine: sa.Engine,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    test_id: int | None = None,
    expected: tuple[str | None, str] | None = None,
) -> Move:
    """Staging becomes Production; the old Production is archived."""
    client, name, production, staging = _with_staging(settings, "promote", expected)
    role_moves.set_role(client, name, staging, registry.PRODUCTION)
    client.delete_registered_model_alias(name, registry.STAGING)
    if production is not None and production != staging:
        role_moves.archive(client, name, production)
    return _audit(
        engine,
        settings,
        Action.PROMOTE,
        production,
        staging,
        staging,
        actor,
        reason,
        evidence,
        test_id,
    )


def reject(
    settings: Settings,
    engine: sa.Engine,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    test_id: int | None = None,
    action: Action = Action.REJECT,
    expected: tuple[str | None, str] | None = None,
) -> Move:
    """Staging is archived; all traffic goes back to Production."""
    client, name, production, staging = _with_staging(settings, "reject", expected)
    role_moves.archive(client, name, staging)
    client.set_model_version_tag(name, staging, registry.GATE_REASON, f"{action}: {reason}")
    return _audit(
        engine, settings, action, production, production, staging, actor, reason, evidence, test_id
    )


def rollback(
    settings: Settings,
    engine: sa.Engine,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> Move:
    """Restore the version that was Production before the current one (from the audit log)."""
    client = registry.configure(settings)
    name = settings.model.name
    production, staging = _roles(client, name)
    previous = previous_production(engine, name, production)
    if previous is None:
        raise registry.RegistryError(
            f"no earlier Production version of {name} to restore (current: {production or 'none'})"
        )
    role_moves.set_role(client, name, previous, registry.PRODUCTION)
    if production is not None:
        role_moves.archive(client, name, production)
    return _audit(
        engine,
        settings,
        Action.ROLLBACK,
        production,
        previous,
        staging,
        actor,
        reason,
        evidence,
        None,
    )


def record_answer(
    settings: Settings,
    engine: sa.Engine,
    action: Action,
    pair: tuple[str | None, str],
    actor: str,
    reason: str,
    evidence: dict[str, Any],
    test_id: int | None = None,
) -> int:
    """An answer to a waiting decision that moved nothing, audited and alerted like a move."""
    production, staging = pair
    return _audit(
        engine, settings, action, production, production, staging, actor, reason, evidence, test_id
    ).audit_id


def previous_production(engine: sa.Engine, name: str, production: str | None) -> str | None:
    """The version the current Production replaced when it was promoted.

    Only promotions count: after a rollback to v1, a second rollback goes further back (to what
    v1 replaced), never forward again to the version just rolled back.
    """
    if production is None:
        return None
    with session_scope(engine) as session:
        record = session.scalars(
            sa.select(AuditRecord)
            .where(
                AuditRecord.model_name == name,
                AuditRecord.action == Action.PROMOTE,
                AuditRecord.production_after == production,
            )
            .order_by(AuditRecord.id.desc())
            .limit(1)
        ).first()
        return None if record is None else record.production_before


def history(engine: sa.Engine, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest audit records first."""
    with session_scope(engine) as session:
        records = session.scalars(
            sa.select(AuditRecord)
            .where(AuditRecord.model_name == name)
            .order_by(AuditRecord.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": r.id,
                "action": r.action,
                "production_before": r.production_before,
                "production_after": r.production_after,
                "staging_before": r.staging_before,
                "actor": r.actor,
                "reason": r.reason,
                "created_at": r.created_at.isoformat(),
            }
            for r in records
        ]


def _audit(
    engine: sa.Engine,
    settings: Settings,
    action: Action,
    production_before: str | None,
    production_after: str | None,
    staging_before: str | None,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None,
    test_id: int | None,
) -> Move:
    with session_scope(engine) as session:
        record = AuditRecord(
            action=action,
            model_name=settings.model.name,
            production_before=production_before,
            production_after=production_after,
            staging_before=staging_before,
            actor=actor,
            reason=reason,
            evidence=evidence or {},
            test_id=test_id,
        )
        session.add(record)
        session.flush()
        audit_id = record.id
    move = Move(action, production_before, production_after, staging_before, audit_id)
    alerts.send(
        settings,
        ALERTS[action],
        f"{action}: Production {production_before or '-'} -> {production_after or '-'} "
        f"(Staging was {staging_before or '-'}) by {actor}: {reason}",
        {**move.to_dict(), "actor": actor, "reason": reason},
    )
    return move
