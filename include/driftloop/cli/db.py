"""``driftloop db``: driftloop's database schema (Alembic migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.context import cli_context

app = typer.Typer(help="driftloop's database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate driftloop's tables up to REVISION (default: the newest)."""
    from driftloop.schema import current_revision, upgrade

    context = cli_context(ctx)
    engine = context.engine(require_schema=False)
    upgrade(engine, revision, model_name=context.settings.model.name)
    typer.echo(f"database at revision {current_revision(engine)}")


@app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base'.")],
) -> None:
    """Migrate driftloop's tables down to REVISION ('base' drops them all)."""
    from driftloop.schema import current_revision, downgrade

    engine = cli_context(ctx).engine(require_schema=False)
    downgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine) or 'base'}")


@app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's revision and the newest one this code knows."""
    from driftloop.schema import current_revision, head_revision

    engine = cli_context(ctx).engine(require_schema=False)
    typer.echo(f"current {current_revision(engine) or 'base'}, head {head_revision()}")


@app.command("replay-spill")
def db_replay_spill(
    ctx: typer.Context,
    folder: Annotated[
        Path | None,
        typer.Argument(help="Spill folder (default: prediction-spill under storage.home)."),
    ] = None,
) -> None:
    """Insert the prediction-log rows the server spilled to files while its database refused
    writes (full disk, read-only), then remove the files."""
    from driftloop.stages.spill import SPILL_FOLDER, replay

    context = cli_context(ctx)
    folder = folder or context.settings.storage.home / SPILL_FOLDER
    if not folder.is_dir():
        typer.echo(f"nothing to replay: {folder} does not exist")
        return
    files, rows = replay(context.engine(), folder)
    typer.echo(f"replayed {rows} rows from {files} spill files in {folder}")
