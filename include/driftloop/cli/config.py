"""``driftloop config``: show and check the configuration, and lay out its models' DAG files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.context import cli_context

app = typer.Typer(
    help="Show and check the configuration; write its models' DAG files.", no_args_is_help=True
)


@app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the resolved configuration (YAML file plus environment overrides) as JSON, with
    passwords, tokens and webhook paths masked; a file of several models prints each by name
    (or only the one chosen with --model)."""
    import json

    from driftloop.redaction import redacted_settings
    from driftloop.settings_loader import load_all

    context = cli_context(ctx)
    if context.model:
        shown = redacted_settings(context.settings)
    else:  # every model the file declares, by name, when it declares several
        models = load_all(context.config)
        shown = (
            redacted_settings(next(iter(models.values())))
            if len(models) == 1
            else {name: redacted_settings(settings) for name, settings in models.items()}
        )
    typer.echo(json.dumps(shown, indent=2))


@app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration (also against Airflow's executor) and say where its data
    lives: every model the file declares, or the one chosen with --model."""
    from driftloop.orchestration.executor import airflow_executor, check_executor
    from driftloop.settings_loader import ConfigError, load_all

    context = cli_context(ctx)
    models = {context.model: context.settings} if context.model else load_all(context.config)
    executor = airflow_executor()
    problems = []
    for name, settings in models.items():
        prefix = f"model {name}: " if len(models) > 1 else ""
        try:
            check_executor(settings, executor)
        except ConfigError as exc:
            problems.append(f"{prefix}{exc}")
            continue
        typer.echo(
            f"{prefix}config ok: {len(settings.feature_columns)} features, target "
            f"{settings.data.target!r} ({settings.data.task}), data {settings.data.path}"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    typer.echo(f"Airflow executor: {executor}")


@app.command("dags")
def config_dags(
    ctx: typer.Context,
    dags_folder: Annotated[
        Path | None,
        typer.Option(
            "--dags-folder",
            help="The folder Airflow reads (default: $AIRFLOW__CORE__DAGS_FOLDER, else the "
            "project's dags/).",
        ),
    ] = None,
) -> None:
    """Write dags/models/<name>.py for each model under `models:` (each model's DAGs load, or
    fail, apart from the others'), and remove the files of models no longer declared."""
    import os

    from driftloop.orchestration.model_dags import MODELS_FOLDER, write_model_files
    from driftloop.stack.project import project_path

    context = cli_context(ctx)
    folder = dags_folder or Path(
        os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or project_path("dags")
    )
    written, removed = write_model_files(context.config, folder.expanduser().resolve())
    for path in written:
        typer.echo(f"wrote {path}")
    for path in removed:
        typer.echo(f"removed {path}")
    if not written and not removed:
        typer.echo(f"{folder / MODELS_FOLDER} is up to date")
