"""What every command shares: the config it was given, the model it acts on, the settings, the
database and the registry, each made on first use and passed to the commands through click's
context. ``--model`` is taken in one place for every command (:func:`takes_model`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftloop.config import Settings
from driftloop.settings_loader import load_settings

if TYPE_CHECKING:
    import sqlalchemy as sa

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config (default: $DRIFTLOOP_CONFIG or ./driftloop.yaml)."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The model to act on, when the config declares several under `models:` "
        "(default: $DRIFTLOOP_MODEL__NAME, or the config's only model).",
    ),
]


@dataclass
class CliContext:
    """The loop as one command sees it; nothing is loaded or connected before it is asked for."""

    config: Path | None = None
    model: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engines: dict[bool, sa.Engine] = field(default_factory=dict, repr=False)
    _registry: Any = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, self.model)
        return self._settings

    def engine(self, require_schema: bool = True) -> sa.Engine:
        """The database; commands that need its tables create the embedded default on first use."""
        if require_schema not in self._engines:
            if require_schema:
                from driftloop.database import open_database

                self._engines[require_schema] = open_database(self.settings)
            else:
                from driftloop.storage import make_engine

                self._engines[require_schema] = make_engine(self.settings.database_url)
        return self._engines[require_schema]

    @property
    def registry(self) -> Any:
        """The MLflow client, configured for this config's tracking server."""
        if self._registry is None:
            from driftloop import registry

            self._registry = registry.configure(self.settings)
        return self._registry

    def version(self, role: str) -> str | None:
        """The version number holding ``role`` (``registry.PRODUCTION`` or ``STAGING``)."""
        from driftloop import registry

        found = registry.by_alias(self.registry, self.settings.model.name, role)
        return None if found is None else found.version

    def roles(self) -> tuple[str | None, str | None]:
        """The (Production, Staging) version numbers now."""
        from driftloop.registry import PRODUCTION, STAGING

        return self.version(PRODUCTION), self.version(STAGING)


def cli_context(ctx: typer.Context) -> CliContext:
    """The shared context the root command put on click's context."""
    return ctx.ensure_object(CliContext)


def choose_model(ctx: typer.Context, model: str | None) -> None:
    """``--model`` given after a command's name: the same as before it (``driftloop --model
    NAME cmd``); two different names are refused rather than one silently winning. A name the
    config does not declare is refused here, before the command runs, even by a command that
    reads no settings (``ConfigError``: exit code 2 with the declared names)."""
    if model is None:
        return
    context = cli_context(ctx)
    if context.model not in (None, model):
        raise typer.BadParameter(
            f"{model!r} here and {context.model!r} before the command name two models: give one"
        )
    context.model = model
    context.settings  # noqa: B018 (loads and validates the chosen model now)


def takes_model(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with a ``--model``/``-m`` option of its own, so that every command takes it
    where people type it (``driftloop models --model red_wine``); ``app`` applies it to every
    registered command, so a new command has it without a line of its own."""
    signature = inspect.signature(callback, eval_str=True)
    if "model" in signature.parameters:
        return callback
    parameters = list(signature.parameters.values())
    contexts = [p.name for p in parameters if p.annotation is typer.Context]
    own_context = not contexts  # a command that reads no settings takes it too
    if own_context:
        contexts = ["_context"]
        parameters.append(
            inspect.Parameter("_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        )

    @functools.wraps(callback)
    def with_model(*args: Any, model: str | None = None, **kwargs: Any) -> Any:
        ctx = kwargs.pop(contexts[0]) if own_context else kwargs[contexts[0]]
        choose_model(ctx, model)
        return callback(*args, **kwargs)

    parameters.append(
        inspect.Parameter(
            "model", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ModelOption
        )
    )
    with_model.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_model.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_model


def configure_logging() -> None:
    """The long-running commands say what they do, as the DAG tasks' logs do."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("driftloop").setLevel(logging.INFO)


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
