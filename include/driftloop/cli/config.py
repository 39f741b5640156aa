"""``driftloop config``: show and check the configuration."""

from __future__ import annotations

import typer

from driftloop.cli.context import cli_context

app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)


@app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the resolved configuration (YAML file plus environment overrides) as JSON, with
    passwords, tokens and webhook paths masked."""
    import json

    from driftloop.redaction import redacted_settings

    typer.echo(json.dumps(redacted_settings(cli_context(ctx).settings), indent=2))


@app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration (also against Airflow's executor) and say where its data lives."""
    from driftloop.executor import airflow_executor, check_executor

    settings = cli_context(ctx).settings
    executor = airflow_executor()
    check_executor(settings, executor)
    typer.echo(
        f"config ok: {len(settings.feature_columns)} features, target {settings.data.target!r} "
        f"({settings.data.task}), data {settings.data.path}"
    )
    typer.echo(f"Airflow executor: {executor}")
