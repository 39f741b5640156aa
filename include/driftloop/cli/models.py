"""The model's life before the A/B test: ``driftloop bootstrap``, ``retrain`` and ``models``."""

from __future__ import annotations

from typing import Annotated

import typer

from driftloop.cli.context import cli_context, configure_logging


def bootstrap_command(ctx: typer.Context) -> None:
    """Train the first model on the initial reference split and register it as Production."""
    from driftloop.stages.retrain import bootstrap

    configure_logging()
    context = cli_context(ctx)
    decision = bootstrap(context.settings, context.engine())
    typer.echo(
        f"version {decision.model_version} is Production "
        f"({decision.metric} on PyCaret's holdout: {decision.challenger_score:.4f})"
    )


def retrain_command(
    ctx: typer.Context,
    drift_check: Annotated[
        int | None, typer.Option(help="The drift report id behind this retrain.")
    ] = None,
    latest_drift: Annotated[
        bool, typer.Option("--latest-drift", help="Use the newest drift verdict.")
    ] = False,
) -> None:
    """Run the retrain steps here (what the `retrain` DAG does): assemble, train, evaluate, \
register, gate."""
    from driftloop.stages.drift_check import latest_drift_check
    from driftloop.stages.retrain import retrain
    from driftloop.vocabulary import Trigger

    configure_logging()
    context = cli_context(ctx)
    engine = context.engine()
    if latest_drift:
        drift_check = latest_drift_check(engine, context.settings.model.name)
        if drift_check is None:
            raise ValueError(
                "no drift verdict yet: nothing to retrain for (run `driftloop drift check --all`)"
            )
    trigger = Trigger.MANUAL if drift_check is None else Trigger.DRIFT
    decision, trained = retrain(context.settings, engine, drift_check, trigger)
    if trained is None:
        typer.echo(f"skipped: {decision.reason}")
        return
    typer.echo(
        f"version {decision.model_version} ({trained.model_name}): "
        f"{decision.outcome}: {decision.reason}"
    )


def models_command(ctx: typer.Context) -> None:
    """List the registered versions with their aliases, stages, gate decisions and numbers."""
    from driftloop.registry import list_versions
    from driftloop.stages.gating import latest_gates

    context = cli_context(ctx)
    versions = list_versions(context.settings)
    if not versions:
        typer.echo("no registered versions: run `driftloop bootstrap`")
    gates = latest_gates(context.engine(), context.settings.model.name)
    for v in versions:
        reason = f"  ({v['reason']})" if v["reason"] else ""
        typer.echo(
            f"version {v['version']:>3}  alias {v['aliases']:11} "
            f"stage {v['stage']:10} gate {v['gate']}{reason}"
        )
        if v["version"] in gates:
            typer.echo(f"             gate numbers: {gates[v['version']]}")
