"""Loading the configuration: one YAML file, overridable by ``DRIFTLOOP_<SECTION>__<KEY>``
variables, validated into :class:`driftloop.config.Settings`.

DAGs, the CLI and the server all call :func:`load_settings`, so they see the same values.
Relative paths are resolved against the folder of the YAML file, so a command gives the same
result from any working directory. What needs the data is here, not in the settings models:
when the config leaves ``data.features`` empty, the settings read the feature columns from the
data file's header with the reader this loader gives them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from driftloop.config import DataSettings, Settings, yaml_source

CONFIG_ENV = "DRIFTLOOP_CONFIG"
DEFAULT_CONFIG_NAME = "driftloop.yaml"


class ConfigError(ValueError):
    """A configuration that cannot start driftloop; the message names each bad key."""


def config_path(
    path: str | os.PathLike[str] | None = None,
    default: str | os.PathLike[str] = DEFAULT_CONFIG_NAME,
) -> Path:
    """The YAML file to read: the argument, else ``$DRIFTLOOP_CONFIG``, else ``default``
    (``./driftloop.yaml``)."""
    chosen = path or os.environ.get(CONFIG_ENV) or default
    return Path(chosen).expanduser().resolve()


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read, validate and resolve the configuration; raise :class:`ConfigError` naming bad keys."""
    yaml_file = config_path(path)
    if not yaml_file.is_file():
        raise ConfigError(
            f"config file {yaml_file} does not exist (set {CONFIG_ENV} or pass --config)"
        )
    try:
        with yaml_source(yaml_file):
            settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, yaml_file)) from None
    except (ValueError, yaml.YAMLError) as exc:  # malformed YAML or environment JSON
        raise ConfigError(f"{yaml_file}: {exc}") from None
    settings = _resolve_paths(settings, yaml_file.parent)
    settings._read_header = read_header_of
    return settings


def read_header_of(data: DataSettings) -> list[str]:
    """The column names of the configured data file (imports the data code only when asked)."""
    from driftloop.data import read_header

    return read_header(data.path, data)


def _describe(exc: ValidationError, yaml_file: Path) -> str:
    lines = [f"invalid configuration in {yaml_file} (or its DRIFTLOOP_* environment overrides):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key" + _suggestion(exc, error["loc"])
        elif error["type"] == "missing":
            reason = "required key is missing"
        elif "input" in error and not isinstance(error["input"], dict | list):
            reason += f" (got {error['input']!r})"
        env_name = "DRIFTLOOP_" + "__".join(str(p).upper() for p in error["loc"][:2])
        lines.append(f"  {key}: {reason} [env {env_name}]")
    return "\n".join(lines)


def _suggestion(exc: ValidationError, loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make every relative path absolute against the config file's folder."""

    def absolute(path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser()
        return path if path.is_absolute() else (base / path).resolve()

    home = absolute(settings.storage.home)
    return settings.model_copy(
        update={
            "data": settings.data.model_copy(
                update={
                    "path": absolute(settings.data.path),
                    "drift_source": absolute(settings.data.drift_source),
                }
            ),
            "storage": settings.storage.model_copy(update={"home": home}),
            "mlflow": settings.mlflow.model_copy(
                update={"artifact_root": absolute(settings.mlflow.artifact_root)}
            ),
        }
    )
