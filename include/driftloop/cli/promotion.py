"""Moves between the registry's roles, each asked for, reasoned and audited: ``driftloop
promote``, ``reject`` and ``rollback`` (also under ``driftloop ab``, beside ``ab history``).

A person's promote or reject also settles an approval waiting in Airflow (``ab.approval:
required``): it no longer moves anything, and with ``airflow.api_url`` and a token the waiting
human-in-the-loop task is answered too; otherwise the command says what is left pending."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from driftloop.cli.context import cli_context

if TYPE_CHECKING:
    from driftloop.cli.context import CliContext
    from driftloop.stages.promotion import Move

Reason = Annotated[str | None, typer.Option(help="Why (kept in the audit log); asked when absent.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Actor = Annotated[
    str | None, typer.Option(help="Who acts, for the audit log (default: your user name).")
]


def promote_command(
    ctx: typer.Context, reason: Reason = None, yes: Yes = False, actor: Actor = None
) -> None:
    """Make the Staging version Production now (the old Production is archived)."""
    from driftloop.stages.promotion import promote

    context = cli_context(ctx)
    settings = context.settings
    production, staging = context.roles()
    if staging is None:
        raise ValueError(f"{settings.model.name} has no Staging version to promote")
    _act(
        f"Promote Staging v{staging} to Production (archiving v{production})?",
        lambda why, who: promote(
            settings, context.engine(), who, why, expected=(production, staging)
        ),
        reason,
        yes,
        actor,
        settle=lambda why, who: _settle_waiting(context, "promote", who, why),
    )


def reject_command(
    ctx: typer.Context, reason: Reason = None, yes: Yes = False, actor: Actor = None
) -> None:
    """Archive the Staging version; all traffic goes back to Production."""
    from driftloop.stages.promotion import reject

    context = cli_context(ctx)
    settings = context.settings
    production, staging = context.roles()
    if staging is None:
        raise ValueError(f"{settings.model.name} has no Staging version to reject")
    _act(
        f"Reject Staging v{staging} (archive it)?",
        lambda why, who: reject(
            settings, context.engine(), who, why, expected=(production, staging)
        ),
        reason,
        yes,
        actor,
        settle=lambda why, who: _settle_waiting(context, "reject", who, why),
    )


def rollback_command(
    ctx: typer.Context, reason: Reason = None, yes: Yes = False, actor: Actor = None
) -> None:
    """Restore the previous Production version (the current one is archived)."""
    from driftloop.stages.promotion import previous_production, rollback

    context = cli_context(ctx)
    settings = context.settings
    engine = context.engine()
    production, _ = context.roles()
    previous = previous_production(engine, settings.model.name, production)
    if previous is None:
        raise ValueError(
            f"no earlier Production version of {settings.model.name} to restore "
            f"(current: {production or 'none'})"
        )
    _act(
        f"Roll Production back from v{production} to v{previous}?",
        lambda why, who: rollback(settings, engine, who, why),
        reason,
        yes,
        actor,
    )


def _act(
    question: str,
    action: Callable[[str, str], Move],
    reason: str | None,
    yes: bool,
    actor: str | None,
    settle: Callable[[str, str], None] | None = None,
) -> Move:
    import getpass

    if not yes:
        typer.confirm(question, abort=True)
    if not reason:
        reason = typer.prompt("Reason (for the audit log)")
    who = f"cli:{actor or getpass.getuser()}"
    move = action(reason, who)
    typer.echo(
        f"{move.action}: Production {move.production_before or '-'} "
        f"-> {move.production_after or '-'} "
        f"(audit #{move.audit_id}); servers follow within serving.poll_seconds"
    )
    if settle is not None:
        settle(reason, who)
    return move


def _settle_waiting(context: CliContext, action: str, who: str, reason: str) -> None:
    """The approval this move makes moot: settled here, and answered in Airflow if possible."""
    from driftloop.events import APPROVAL_DAG_ID, model_dag_id
    from driftloop.orchestration.model_dags import dag_model_name
    from driftloop.stages import approval
    from driftloop.vocabulary import ApprovalChoice

    engine = context.engine()
    dag_id = model_dag_id(APPROVAL_DAG_ID, dag_model_name(context.config, context.settings))
    for waiting in approval.pending(engine, context.settings.model.name):
        why = f"{action} by hand: {reason}"
        for view in approval.supersede(engine, waiting.test_id, who, why):
            choice = ApprovalChoice.APPROVE if view.decision == action else ApprovalChoice.REJECT
            # the settlement's own comment: ab_approval knows this answer for the CLI's echo
            typer.echo(approval.answer_in_airflow(context.settings, view, choice, why, dag_id))
