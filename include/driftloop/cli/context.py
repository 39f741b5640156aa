"""What every command shares: the config it was given, the settings, the database and the
registry, each made on first use and passed to the commands through click's context."""

from __future__ import annotations

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


def configure_logging() -> None:
    """The long-running commands say what they do, as the DAG tasks' logs do."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("driftloop").setLevel(logging.INFO)


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
