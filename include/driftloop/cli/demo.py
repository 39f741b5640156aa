"""``driftloop demo``: the whole loop for real (see :mod:`driftloop.demo.loop`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.context import cli_context


def demo_command(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Where everything goes (default: storage.home); wiped first."),
    ] = None,
) -> None:
    """Run the whole loop for real: MLflow, Airflow's components and the server as processes,
    drift -> retrain -> Staging -> A/B decision, then a summary; everything is stopped after."""
    from driftloop.demo.loop import run_loop, summary_lines
    from driftloop.settings_loader import config_path

    context = cli_context(ctx)
    settings = context.settings  # a bad config stops here, before any process starts
    result = run_loop(config_path(context.config), home or settings.storage.home)
    for line in summary_lines(result):
        typer.echo(line)
    if not result.decision or result.traffic.get("failed"):
        raise RuntimeError("the loop did not reach an A/B decision without failed requests")
