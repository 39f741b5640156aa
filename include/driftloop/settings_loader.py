"""Loading the configuration: one YAML file, overridable by ``DRIFTLOOP_<SECTION>__<KEY>``
variables, validated into :class:`driftloop.config.Settings`.

DAGs, the CLI and the server all call :func:`load_settings`, so they see the same values.
Relative paths are resolved against the folder of the YAML file, so a command gives the same
result from any working directory. What needs the data is here, not in the settings models:
when the config leaves ``data.features`` empty, the settings read the feature columns from the
data file's header with the reader this loader gives them.

One file may declare many models (issue 30): a top-level ``models:`` map, each entry the
sections that differ from the rest of the file, which every model inherits. Each model is
then validated as a whole :class:`Settings` of its own, named by its key; a file without
``models:`` is one model, exactly as before. See "Many models" in docs/configuration.md.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from driftloop.config import DataSettings, Settings, yaml_source

CONFIG_ENV = "DRIFTLOOP_CONFIG"
MODEL_ENV = "DRIFTLOOP_MODEL__NAME"  # model.name's own override: it names the model
DEFAULT_CONFIG_NAME = "driftloop.yaml"
MODELS_KEY = "models"


_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


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


def load_settings(
    path: str | os.PathLike[str] | None = None, model: str | None = None, **overrides: Any
) -> Settings:
    """Read, validate and resolve the configuration of one model (``model``, else
    ``$DRIFTLOOP_MODEL__NAME``, else the file's only model); raise :class:`ConfigError` naming bad
    keys, and the model when the file declares several."""
    yaml_file = _existing(config_path(path))
    document = read_document(yaml_file)
    entries = declared_models(document, yaml_file)
    chosen = model or os.environ.get(MODEL_ENV) or None
    if not entries:
        settings = _build(document, yaml_file, None, overrides)
        if chosen is not None and chosen != settings.model.name:
            raise ConfigError(
                f"{yaml_file} configures one model, {settings.model.name!r}, not {chosen!r}"
                f" (from --model or {MODEL_ENV})"
            )
        return settings
    if chosen is None:
        if len(entries) > 1:
            raise ConfigError(
                f"{yaml_file} declares {len(entries)} models ({', '.join(entries)}): choose "
                f"one with --model or {MODEL_ENV}"
            )
        chosen = next(iter(entries))
    if chosen not in entries:
        close = difflib.get_close_matches(chosen, list(entries), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{yaml_file} declares no model {chosen!r} (it declares {', '.join(entries)}){hint}"
        )
    return _build_model(document, yaml_file, chosen, entries[chosen], overrides)


def load_all(path: str | os.PathLike[str] | None = None) -> dict[str, Settings]:
    """Every model the file declares (one for a file without ``models:``), each validated;
    one :class:`ConfigError` lists the errors of every model that fails, each line naming its
    model, so that one run of ``driftloop config check`` shows them all."""
    yaml_file = _existing(config_path(path))
    document = read_document(yaml_file)
    entries = declared_models(document, yaml_file)
    if not entries:
        settings = _build(document, yaml_file, None, {})
        return {settings.model.name: settings}
    loaded: dict[str, Settings] = {}
    errors: list[str] = []
    for name, entry in entries.items():
        try:
            loaded[name] = _build_model(document, yaml_file, name, entry, {})
        except ConfigError as exc:
            errors.append(str(exc))
    errors.extend(_shared_stores(loaded))
    if errors:
        raise ConfigError("\n".join(errors))
    return loaded


def declared_names(path: str | os.PathLike[str] | None = None) -> list[str]:
    """The names under ``models:`` (none for a file without it), no model validated: the
    Airflow side lays out one DAG file per declared model, a broken one included, so that its
    error shows where its DAGs would be."""
    yaml_file = _existing(config_path(path))
    return list(declared_models(read_document(yaml_file), yaml_file))


def read_document(yaml_file: Path) -> dict[str, Any]:
    """The YAML file as a mapping (an empty file is an empty mapping)."""
    try:
        document = yaml.safe_load(yaml_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_file}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{yaml_file}: the top level must be a mapping of sections")
    return document


def declared_models(document: dict[str, Any], yaml_file: Path) -> dict[str, dict[str, Any]]:
    """The ``models:`` map, each entry a mapping of sections (empty: all inherited)."""
    entries = document.get(MODELS_KEY)
    if entries is None:
        return {}
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(
            f"{yaml_file}: {MODELS_KEY} must map each model's name to its own sections"
        )
    if (document.get("model") or {}).get("name") is not None:
        raise ConfigError(
            f"{yaml_file}: model.name is set beside {MODELS_KEY}: each model's name is its key "
            f"in {MODELS_KEY}; remove model.name"
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, entry in entries.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"{yaml_file}: {MODELS_KEY}: {name!r} is not a model name (letters, digits, "
                "'_', '.', '-')"
            )
        if entry is not None and not isinstance(entry, dict):
            raise ConfigError(
                f"{yaml_file}: {MODELS_KEY}.{name} must be a mapping of sections (got {entry!r})"
            )
        checked[name] = entry or {}
    return checked


def model_document(document: dict[str, Any], name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The file as one model sees it: the project's sections with the model's entry merged in
    (mappings merge key by key, anything else is replaced); its name is its key; its files
    live in a folder of its own below the project's ``storage.home`` unless it names one."""
    project = {key: value for key, value in document.items() if key != MODELS_KEY}
    merged = _merge(project, entry)
    own_name = (entry.get("model") or {}).get("name")
    if own_name is not None and own_name != name:
        raise ConfigError(
            f"model {name!r}: model.name is {own_name!r}, but a model's name is its key in "
            f"{MODELS_KEY}; remove model.name or rename the key"
        )
    merged["model"] = {**(merged.get("model") or {}), "name": name}
    if "home" not in (entry.get("storage") or {}):
        home = Path(str((project.get("storage") or {}).get("home", "var")))
        merged["storage"] = {**(merged.get("storage") or {}), "home": str(home / name)}
    return merged


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _shared_stores(loaded: dict[str, Settings]) -> list[str]:
    """Two models may share driftloop's database (every row carries its model's name) but not
    a storage home: their batches, profiles, reports and models' files would collide there."""
    owners: dict[str, list[str]] = {}
    for name, settings in loaded.items():
        owners.setdefault(str(settings.storage.home), []).append(name)
    return [
        f"models {', '.join(names)} share the storage.home {home}: each model needs its own "
        "(set storage.home in its entry, or leave it out for a folder named after the model)"
        for home, names in owners.items()
        if len(names) > 1
    ]


def _build_model(
    document: dict[str, Any],
    yaml_file: Path,
    name: str,
    entry: dict[str, Any],
    overrides: dict[str, Any],
) -> Settings:
    """One model of a many-model file. ``DRIFTLOOP_STORAGE__HOME`` is the project's home there:
    a model that names no home of its own gets a folder of that name below it, as below the
    file's ``storage.home``."""
    overrides = {**overrides, "model": {"name": name}}  # beats $DRIFTLOOP_MODEL__NAME
    env_home = os.environ.get("DRIFTLOOP_STORAGE__HOME")
    if env_home and "home" not in (entry.get("storage") or {}) and "storage" not in overrides:
        overrides = {**overrides, "storage": {"home": str(Path(env_home) / name)}}
    return _build(model_document(document, name, entry), yaml_file, name, overrides)


def _existing(yaml_file: Path) -> Path:
    if not yaml_file.is_file():
        raise ConfigError(
            f"config file {yaml_file} does not exist (set {CONFIG_ENV} or pass --config)"
        )
    return yaml_file


def _build(
    document: dict[str, Any], yaml_file: Path, model: str | None, overrides: dict[str, Any]
) -> Settings:
    """Validate one model's sections (below the environment and ``overrides``)."""
    try:
        with yaml_source(document):
            settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, yaml_file, model)) from None
    except ValueError as exc:  # environment JSON that does not parse
        prefix = f"model {model!r}: " if model else ""
        raise ConfigError(f"{yaml_file}: {prefix}{exc}") from None
    settings = _resolve_paths(settings, yaml_file.parent)
    settings._read_header = read_header_of
    return settings


def read_header_of(data: DataSettings) -> list[str]:
    """The column names of the configured data file (imports the data code only when asked)."""
    from driftloop.data import read_header

    return read_header(data.path, data)


def _describe(exc: ValidationError, yaml_file: Path, model: str | None = None) -> str:
    which = f" of model {model!r}" if model else ""
    lines = [
        f"invalid configuration{which} in {yaml_file} (or its DRIFTLOOP_* environment overrides):"
    ]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if model:  # the model is named on every line: errors of many models come together
            key = f"[{model}] {key}"
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
