"""The ``driftloop`` command: the root, every command and group in one place, and ``main``."""

from __future__ import annotations

import os
import sys

import typer

from driftloop.cli import (
    ab,
    batches,
    config,
    db,
    demo,
    drift,
    models,
    promotion,
    score,
    status,
    stream,
    traffic,
)
from driftloop.cli.context import (
    CliContext,
    ConfigOption,
    ModelOption,
    choose_model,
    takes_model,
)
from driftloop.settings_loader import ConfigError

app = typer.Typer(
    help="driftloop: monitor drift, retrain, register, serve and promote.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# MLflow's client retries an unreachable server for minutes by default (7 retries, backoff
# factor 2, 120 s timeout); a person at a terminal wants the one-sentence error within about
# 10 seconds. Values set in the environment win.
MLFLOW_PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = None, model: ModelOption = None) -> None:
    ctx.obj = CliContext(config)
    choose_model(ctx, model)
    for name, value in MLFLOW_PATIENCE.items():
        os.environ.setdefault(name, value)


# Commands at the top level, in the order `driftloop --help` lists them.
app.command("bootstrap")(models.bootstrap_command)
app.command("retrain")(models.retrain_command)
app.command("models")(models.models_command)
app.command("score")(score.score_command)
app.command("simulate")(traffic.simulate_command)
app.command("status")(status.status_command)
app.command("promote")(promotion.promote_command)
app.command("reject")(promotion.reject_command)
app.command("rollback")(promotion.rollback_command)
app.command("demo")(demo.demo_command)

# Groups of commands; each module declares its own commands.
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(stream.app, name="stream")
app.add_typer(batches.app, name="batches")
app.add_typer(drift.app, name="drift")
app.add_typer(traffic.app, name="traffic")
app.add_typer(ab.app, name="ab")


def _every_command_takes_model(typer_app: typer.Typer) -> None:
    """``--model`` after any command's name as well as before it: one place for all commands,
    those of the groups included, rather than one option per command."""
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = takes_model(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _every_command_takes_model(group.typer_instance)


_every_command_takes_model(app)


def main() -> None:
    """Entry point: known errors become one sentence and an exit code, not a traceback."""
    from driftloop.ingestion.stream import StreamError
    from driftloop.stages.ingest import IngestError

    try:
        # without standalone mode click returns a command's ``typer.Exit`` code, not exits
        code = app(standalone_mode=False)
    except KeyboardInterrupt:  # Ctrl-C: whatever was started has been stopped on the way out
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Abort:  # a "no" at a confirmation (click's Abort is a RuntimeError too)
        typer.echo("aborted", err=True)
        sys.exit(1)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (IngestError, StreamError, ValueError, RuntimeError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        mlflow_errors = sys.modules.get("mlflow.exceptions")  # imported if MLflow raised
        if mlflow_errors and isinstance(exc, mlflow_errors.MlflowException):
            message = str(exc).strip().splitlines() or [exc.error_code]
            from driftloop.redaction import redact_url

            where = redact_url(sys.modules["mlflow"].get_tracking_uri())
            typer.echo(f"error: MLflow at {where}: {message[0]}", err=True)
            sys.exit(1)
        # Usage errors (click's, which typer vendors) show their message and carry an exit code.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
