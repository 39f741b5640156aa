"""The traffic between Production and Staging: ``driftloop traffic`` (the stored split) and
``driftloop simulate`` (requests and feedback sent to a running server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.context import cli_context

app = typer.Typer(help="Traffic split between Production and Staging.", no_args_is_help=True)


@app.command("show")
def traffic_show(ctx: typer.Context) -> None:
    """Print the stored split (what every server worker uses)."""
    from driftloop.ab.traffic import load_split

    context = cli_context(ctx)
    name = context.settings.model.name
    split = load_split(context.engine(), name, default_weight=0.0)
    shadow = ", staging shadows production" if split.shadow else ""
    # the version each replica's /models shows once it routes by this split
    saved = f" (split version {split.version})" if split.version else " (never set)"
    typer.echo(
        f"{name}: staging {split.staging_weight:.0%}, "
        f"production {1 - split.staging_weight:.0%}{shadow}{saved}"
    )


@app.command("set")
def traffic_set(
    ctx: typer.Context,
    staging: Annotated[float, typer.Option(help="Share of traffic for Staging, 0..1.")],
    shadow: Annotated[
        bool, typer.Option(help="Staging also predicts every request, unreturned.")
    ] = False,
) -> None:
    """Store a new split; servers pick it up on their next poll."""
    import getpass

    from driftloop.ab.traffic import TrafficSplit
    from driftloop.stages.traffic_split import save_split

    context = cli_context(ctx)
    save_split(
        context.engine(),
        context.settings.model.name,
        TrafficSplit(staging, shadow),
        who=f"cli:{getpass.getuser()}",
    )
    traffic_show(ctx)


def simulate_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="The prediction server.")] = "http://127.0.0.1:8000",
    requests_: Annotated[
        int, typer.Option("--requests", help="How many one-record requests.")
    ] = 200,
    feedback: Annotated[bool, typer.Option(help="Also send each record's true label.")] = False,
    batches: Annotated[int, typer.Option(help="Draw rows from the newest N accepted batches.")] = 3,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Send traffic (and feedback) built from accepted batches; print the split the server made."""
    import os

    import pandas as pd

    from driftloop.ab.traffic_simulator import simulate, wait_ready
    from driftloop.data import read_table
    from driftloop.stages.ingest import ACCEPTED, list_batches

    context = cli_context(ctx)
    settings = context.settings
    recent = list_batches(context.engine(), ACCEPTED, model=settings.model.name)[-batches:]
    if not recent:
        raise ValueError("no accepted batches to draw rows from: replay and ingest a stream first")
    frame = pd.concat([read_table(Path(b.path), settings.data) for b in recent], ignore_index=True)
    records = frame[settings.feature_columns].to_dict("records")
    labels = (
        frame[settings.data.target].tolist() if feedback and settings.data.target in frame else None
    )
    wait_ready(url)
    result = simulate(
        url, records, labels, requests_, seed=seed, api_key=os.environ.get("DRIFTLOOP_API_KEY")
    )
    for line in result.summary():
        typer.echo(line)
    if result.failed:
        raise RuntimeError(f"{sum(result.failed.values())} requests failed")
