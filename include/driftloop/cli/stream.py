"""``driftloop stream``: replay the data set as a stream of time-stamped batches."""

from __future__ import annotations

from typing import Annotated

import typer

from driftloop.cli.context import cli_context

app = typer.Typer(help="Replay the data set as a stream of batches.", no_args_is_help=True)


@app.command("reference")
def stream_reference(ctx: typer.Context) -> None:
    """Write the initial reference split: the data the first model is trained on."""
    from driftloop.ingestion.stream import build_reference

    path, rows = build_reference(cli_context(ctx).settings)
    typer.echo(f"reference split: {rows} rows in {path}")


@app.command("scenarios")
def stream_scenarios() -> None:
    """List the replay scenarios."""
    from driftloop.ingestion.scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        params = f" [{', '.join(scenario.params)}]" if scenario.params else ""
        typer.echo(f"{scenario.name:12} {scenario.description}{params}")


@app.command("replay")
def stream_replay(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Option(help="none, gradual, sudden or label-shift.")] = "none",
    batches: Annotated[
        int | None, typer.Option(help="How many batches (default: all the pool holds).")
    ] = None,
    start_batch: Annotated[
        int | None, typer.Option(help="Batches before the shift starts (default: a third).")
    ] = None,
    strength: Annotated[
        float | None, typer.Option(help="Size of the shift (see `stream scenarios`).")
    ] = None,
    shift_feature: Annotated[
        list[str] | None, typer.Option(help="A feature the sudden scenario shifts (repeatable).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: stream.seed).")] = None,
    inject_fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Also write a broken copy of a batch: e.g. text-in-numeric (repeatable)."
        ),
    ] = None,
) -> None:
    """Cut the stream pool into time-stamped batches in the landing folder."""
    from driftloop.ingestion.faults import FAULTS, write_faulty_batch
    from driftloop.ingestion.stream import batch_file_name, replay

    settings = cli_context(ctx).settings
    unknown = sorted(set(inject_fault or []) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {sorted(FAULTS)}")
    written = replay(
        settings, scenario, batches, start_batch, strength, tuple(shift_feature or ()), seed
    )
    for batch in written:
        note = f"  ({batch.note})" if batch.note else ""
        typer.echo(f"wrote {batch.path.name}: {batch.rows} rows{note}")
    for offset, kind in enumerate(inject_fault or [], start=1):
        import pandas as pd

        from driftloop.data import read_table

        source = written[min(offset, len(written)) - 1]
        frame: pd.DataFrame = read_table(source.path, settings.data)
        path = source.path.with_name(
            batch_file_name(offset, source.batch_time, source.path.suffix, f"fault-{kind}")
        )
        write_faulty_batch(kind, frame, path, settings)
        typer.echo(f"wrote {path.name}: a broken copy ({kind})")
