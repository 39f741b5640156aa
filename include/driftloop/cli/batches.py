"""``driftloop batches``: ingest, list, reprocess and label batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from driftloop.cli.context import cli_context

if TYPE_CHECKING:
    from driftloop.stages.ingest import IngestOutcome
    from driftloop.storage import Batch

app = typer.Typer(help="Ingest, list, reprocess and label batches.", no_args_is_help=True)


@app.command("ingest")
def batches_ingest(ctx: typer.Context) -> None:
    """Validate every file in the landing folder: accept it or quarantine it with its reasons."""
    from driftloop.stages.ingest import ingest_landing

    context = cli_context(ctx)
    outcomes = ingest_landing(context.settings, context.engine())
    if not outcomes:
        typer.echo(f"no files in {context.settings.storage.landing_dir}")
    for outcome in outcomes:
        _print_outcome(outcome)


@app.command("list")
def batches_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only batches with this status (accepted, quarantined).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List recorded batches, oldest first, with their status and reasons."""
    from driftloop.stages.ingest import list_batches

    context = cli_context(ctx)
    rows = list_batches(context.engine(), status, model=context.settings.model.name)
    if not rows:
        typer.echo("no batches" + (f" with status {status}" if status else ""))
    for batch in rows:
        if as_json:
            typer.echo(json.dumps(_batch_record(batch)))
        else:
            _print_batch(batch)


@app.command("reprocess")
def batches_reprocess(
    ctx: typer.Context,
    batch: Annotated[str, typer.Argument(help="Batch id or file name.")],
    file: Annotated[
        Path | None, typer.Option(help="A fixed file to use instead of the quarantined one.")
    ] = None,
) -> None:
    """Validate a quarantined batch again after fixing its file."""
    from driftloop.stages.ingest import reprocess

    context = cli_context(ctx)
    _print_outcome(reprocess(batch, context.settings, context.engine(), file))


@app.command("label")
def batches_label(
    ctx: typer.Context,
    batch: Annotated[str, typer.Argument(help="Batch id or file name.")],
    file: Annotated[
        Path, typer.Argument(help="Labels: the data.id_column and target columns, one row each.")
    ],
) -> None:
    """Join late labels to a checked batch on data.id_column and judge its performance again."""
    from driftloop.stages.batch_labels import label_batch

    context = cli_context(ctx)
    labelled = label_batch(context.settings, context.engine(), batch, file)
    replaced = f", {labelled.replaced} replaced a different label" if labelled.replaced else ""
    typer.echo(f"batch {labelled.batch_id}: {labelled.labels} labels joined{replaced}")
    realized = labelled.check.realized
    if realized is not None:
        for name, value in realized.metrics.items():
            band = "" if value.low is None else f" ({value.low:.4f} to {value.high:.4f})"
            typer.echo(f"    {name} {value.value:.4f}{band}")
        typer.echo(f"    {realized.reason}")
    for note in labelled.check.notes:
        typer.echo(f"    note: {note}")


def _batch_record(batch: Batch) -> dict:
    return {
        "id": batch.id,
        "name": batch.name,
        "status": batch.status,
        "rows": batch.n_rows,
        "time": batch.batch_time.isoformat(),
        "reasons": batch.reasons,
        "path": batch.path,
    }


def _print_batch(batch: Batch) -> None:
    from driftloop.stages.ingest import QUARANTINED

    rows_text = f"{batch.n_rows} rows" if batch.n_rows is not None else "-"
    typer.echo(f"{batch.id:>4}  {batch.status:11}  {batch.name}  {rows_text}")
    for reason in batch.reasons:
        typer.echo(f"        - {reason}")
    if batch.status == QUARANTINED:
        typer.echo(f"        file: {batch.path}")


def _print_outcome(outcome: IngestOutcome) -> None:
    rows = f", {outcome.n_rows} rows" if outcome.n_rows is not None else ""
    typer.echo(f"{outcome.name}: {outcome.status} (batch {outcome.batch_id}{rows})")
    for reason in outcome.reasons:
        typer.echo(f"    - {reason}")
    for note in outcome.notes:
        typer.echo(f"    note: {note}")
