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
    models: Annotated[
        int,
        typer.Option(
            min=1,
            max=3,
            help="How many models at once: 1 is `make demo`'s; 2 or 3 add red wine and a "
            "regression on scikit-learn's diabetes set, which keep serving from Production "
            "while drift in white wine retrains and promotes it alone.",
        ),
    ] = 1,
) -> None:
    """Run the whole loop for real: MLflow, Airflow's components and the server as processes,
    drift -> retrain -> Staging -> A/B decision, then a summary; everything is stopped after."""
    from driftloop.settings_loader import config_path

    context = cli_context(ctx)
    settings = context.settings  # a bad config stops here, before any process starts
    if models > 1:
        _several(config_path(context.config), home or settings.storage.home, models)
        return
    from driftloop.demo.loop import run_loop, summary_lines

    result = run_loop(config_path(context.config), home or settings.storage.home)
    for line in summary_lines(result):
        typer.echo(line)
    if not result.decision or result.traffic.get("failed"):
        raise RuntimeError("the loop did not reach an A/B decision without failed requests")


def _several(config: Path, home: Path, count: int) -> None:
    """The loop of ``count`` models from the demo's config (:mod:`driftloop.demo.models`)."""
    from driftloop.demo.models import run_models_loop, summary_lines

    result = run_models_loop(config, home, count)
    for line in summary_lines(result):
        typer.echo(line)
    failed = [n for n, outcome in result.models.items() if outcome.traffic.get("failed")]
    if result.promoted != [result.drifting] or failed:
        raise RuntimeError(
            f"expected {result.drifting} alone promoted and no failed request; promoted "
            f"{result.promoted or 'none'}, failed requests to {failed or 'none'}"
        )
