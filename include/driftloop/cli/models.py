"""The model's life before the A/B test: ``driftloop bootstrap``, ``retrain`` and ``models``
(every model of the deployment at a glance, or one model's versions)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftloop.cli.context import CliContext, cli_context, configure_logging

if TYPE_CHECKING:
    from driftloop.ui.models import ModelSummary


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


def models_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Every model with its Production and Staging versions, last drift verdict and A/B test
(a file of several models, none chosen); with --model (or one model), its registered versions \
with their aliases, stages, gate decisions and numbers."""
    from driftloop.settings_loader import MODEL_ENV, declared_names

    context = cli_context(ctx)
    if context.model is None and not os.environ.get(MODEL_ENV) and declared_names(context.config):
        _list_models(context, as_json)
    else:
        _list_versions(context, as_json)


def _list_versions(context: CliContext, as_json: bool) -> None:
    from driftloop.registry import list_versions
    from driftloop.stages.gating import latest_gates

    versions = list_versions(context.settings)
    if not versions and not as_json:
        typer.echo("no registered versions: run `driftloop bootstrap`")
    gates = latest_gates(context.engine(), context.settings.model.name)
    for v in versions:
        if as_json:
            typer.echo(json.dumps({**v, "gate_numbers": gates.get(v["version"])}))
            continue
        reason = f"  ({v['reason']})" if v["reason"] else ""
        typer.echo(
            f"version {v['version']:>3}  alias {v['aliases']:11} "
            f"stage {v['stage']:10} gate {v['gate']}{reason}"
        )
        if v["version"] in gates:
            typer.echo(f"             gate numbers: {gates[v['version']]}")


def _list_models(context: CliContext, as_json: bool) -> None:
    """One row per declared model; a model that could not be read whole still has its row,
    with the reason below it, and makes the command fail once every row is shown."""
    from driftloop.ui.models import load_deployment

    deployment = load_deployment(context.config)
    try:
        rows = deployment.summaries()
    finally:
        deployment.close()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.to_dict()))
    else:
        _print_table(rows)
    failed = [row.model for row in rows if row.error]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(rows)} models could not be read whole: {', '.join(failed)}"
        )


def _print_table(rows: list[ModelSummary]) -> None:
    head = ("model", "Production", "Staging", "last drift verdict", "A/B test")
    cells = [
        (
            row.model,
            f"v{row.production}" if row.production else "-",
            f"v{row.staging}" if row.staging else "-",
            drift_words(row.drift),
            ab_words(row.ab),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (head, *cells)) for i in range(len(head))]
    for row, line in zip((None, *rows), (head, *cells), strict=True):
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        for problem in (row.error or "").splitlines() if row else ():
            typer.echo(f"    {problem.strip()}")


def drift_words(check: dict[str, Any] | None) -> str:
    """The last drift check as the table says it: verdict, when (to the minute), batch."""
    if check is None:
        return "none yet"
    when = (check["created_at"] or "")[:16].replace("T", " ")
    return f"{check['status']} ({when}, {check['batch']})"


def ab_words(test: dict[str, Any] | None) -> str:
    if test is None:
        return "none"
    return (
        f"{test['status']} #{test['id']}: Staging v{test['staging_version']} "
        f"vs Production v{test['production_version']}"
    )
