"""Batch scoring from the command line: ``driftloop score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.context import cli_context


def score_command(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV or Parquet file to score (default: every file in the inbox)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the answers (default: scoring/out/)."),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write the rows to the prediction log.")
    ] = False,
) -> None:
    """Score unlabelled rows with the Production version; bad rows are listed, not scored.

    A file from the inbox (``scoring/inbox/``) moves to ``scoring/done/`` once scored, or to
    ``scoring/quarantine/`` when no row could be used; a file elsewhere stays where it is.
    """
    from driftloop.stages.batch_scoring import Outcome, score_file, waiting_files

    context = cli_context(ctx)
    settings, engine = context.settings, context.engine()
    if out is not None and file is None:
        raise typer.BadParameter("--out needs a FILE: each inbox file gets its own answers")
    files = [file] if file is not None else waiting_files(settings)
    if not files:
        typer.echo(f"nothing to score: {settings.storage.scoring_dir / 'inbox'} is empty")
        return
    failed = 0
    for path in files:
        result = score_file(
            settings,
            engine,
            path,
            out,
            log_predictions=False if no_log else None,
            progress=lambda rows, name=path.name: typer.echo(
                f"{name}: {rows:,} rows read", err=True
            ),
        )
        if result.outcome is Outcome.QUARANTINED:
            failed += 1
            typer.echo(f"{path.name}: not scored: {result.reason}")
            if result.input != path:
                typer.echo(f"    moved to {result.input}")
            continue
        shadow = f"; Staging {result.shadow_version} in shadow" if result.shadow_version else ""
        typer.echo(
            f"{path.name}: {result.scored:,} of {result.rows:,} rows scored by version "
            f"{result.version}{shadow} in {result.seconds:.1f} s"
        )
        typer.echo(f"    answers: {result.answers}")
        if result.rejected is not None:
            typer.echo(f"    {result.set_aside:,} rows set aside, with reasons: {result.rejected}")
    if failed:
        raise typer.Exit(1)
