"""Which model a DAG file builds its DAG for, and the file per model that keeps each model's
DAGs loading when another model's configuration is broken.

A config without ``models:`` is one model: the five files of ``dags/`` (``KINDS``) build its
DAGs under their own ids and Assets, exactly as before. A config with ``models:`` gives each
model a small file of its own, ``dags/models/<name>.py`` (written by ``driftloop config dags``),
which loads that model's settings and runs the five files for it: its DAGs carry the model's
name (``drift_monitor__<name>``, ``driftloop://drift/<name>``, the tag ``model:<name>``), and
the five files build nothing when Airflow parses them on their own.

Why a file per model: Airflow records import errors per file, and a file that raises builds
no DAG at all. A broken model is then one import error, on its own file, naming the model and
the key (the :class:`~driftloop.settings_loader.ConfigError` of ``load_settings``), while every
other model's file keeps loading; a file that built every model would lose them all.

The DAG processor imports this when it parses a DAG file, so it imports no more than
:mod:`driftloop.orchestration.dag_support` (the settings loader: pydantic and yaml).
"""

from __future__ import annotations

import runpy
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.events import model_asset_uri, model_dag_id
from driftloop.orchestration.dag_support import dag_config, dag_settings, open_task
from driftloop.settings_loader import ConfigError, declared_names, load_settings

if TYPE_CHECKING:
    import sqlalchemy as sa

    from driftloop.config import Settings

KINDS = ("ab_approval", "ab_evaluate", "batch_score", "drift_monitor", "retrain")
"""The DAG files of ``dags/``, one per kind of DAG every model has."""
MODELS_FOLDER = "models"
"""The folder of ``dags/`` that holds one file per model of a config with ``models:``."""
WRITTEN_MARK = "# Written by `driftloop config dags`"
"""The line that tells the files driftloop wrote (and may rewrite or remove) from a user's."""
TAG = "driftloop"

# The model a model's file is running the five files for (unset: Airflow parses them directly).
_building: ContextVar[ModelDags | None] = ContextVar("driftloop_model_dags", default=None)


@dataclass(frozen=True)
class ModelDags:
    """One model as its DAGs see it: the config they read, the name their tasks pass to
    ``load_settings`` (None for a config without ``models:``, which keeps today's ids) and the
    settings their schedules and arguments come from."""

    config: str
    model: str | None
    settings: Settings

    def dag_id(self, kind: str) -> str:
        return model_dag_id(kind, self.model)

    def asset_uri(self, uri: str) -> str:
        """The model's own Asset of an event (``driftloop.events.DRIFT_ASSET_URI``, ...)."""
        return model_asset_uri(uri, self.model)

    @property
    def tags(self) -> list[str]:
        """``driftloop``, and ``model:<name>`` for Airflow's tag filter when there are models."""
        return [TAG] if self.model is None else [TAG, f"model:{self.model}"]

    def load(self) -> Settings:
        """The model's settings, read again when a task runs."""
        return load_settings(self.config, self.model)

    def open(self) -> tuple[Settings, sa.Engine]:
        """What a task works with: the model's settings and driftloop's database."""
        return open_task(self.config, self.model)


def dag_model_name(config: str | Path | None, settings: Settings) -> str | None:
    """The name a model's DAG ids and Assets carry (``ModelDags.model``): its own in a config
    with ``models:``, None in one without (today's ids)."""
    return settings.model.name if declared_names(config) else None


def dag_models(dag_file: str) -> list[ModelDags]:
    """The models a file of ``dags/`` builds its DAG for: the one a model's file runs it for;
    else the config's one model when it has no ``models:``; else none (each model's own file
    builds its DAGs), once every declared model has that file."""
    building = _building.get()
    if building is not None:
        return [building]
    config = dag_config(dag_file)
    names = declared_names(config) if Path(config).is_file() else []
    if not names:  # a missing file: load_settings says so, as the import error
        return [ModelDags(config, None, dag_settings(config))]
    folder = Path(dag_file).parent / MODELS_FOLDER
    missing = [name for name in names if not (folder / f"{name}.py").is_file()]
    if missing:
        raise ConfigError(
            f"{config} declares models, whose DAGs each model's file in {folder} builds, and "
            f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} none: run "
            '`driftloop config dags` (docs/models.md, "In Airflow")'
        )
    return []


def build_model_dags(model_file: str) -> None:
    """Build the DAGs of the model a file of ``dags/models/`` is named after: its settings
    first (broken ones raise a ConfigError naming the model and the key: this file's import
    error, and no other's), then each file of ``dags/`` run for it."""
    path = Path(model_file)
    name, dags_folder = path.stem, path.parent.parent
    config = dag_config(str(dags_folder / f"{KINDS[0]}.py"))
    model = ModelDags(config, name, dag_settings(config, name))
    token = _building.set(model)
    try:
        for kind in KINDS:
            runpy.run_path(str(dags_folder / f"{kind}.py"), run_name=f"driftloop_dags.{kind}")
    finally:
        _building.reset(token)


def model_file_text(name: str) -> str:
    """The file of ``dags/models/`` that builds the model ``name``'s DAGs."""
    ids = "".join(f"\n- {model_dag_id(kind, name)}" for kind in KINDS)
    return f'''"""Airflow DAGs of driftloop's model {name}, the files of dags/ run for it:
{ids}

Its configuration is the entry {name} of `models:` in the config (docs/models.md). When it is
broken, this file's import error names the model and the key; other models' DAGs still load.
"""

{WRITTEN_MARK} from the config's `models:`; run it again instead of editing.
from driftloop.orchestration.model_dags import build_model_dags

build_model_dags(__file__)
'''


def write_model_files(
    config: Path | str | None, dags_folder: Path
) -> tuple[list[Path], list[Path]]:
    """Write ``dags/models/<name>.py`` for every model the config declares, a broken one
    included (its error then shows in Airflow, on its file), and remove the files written for
    models it declares no more (all of them for a config without ``models:``); the files
    written or changed, and those removed. A file driftloop did not write is never touched."""
    missing = [kind for kind in KINDS if not (dags_folder / f"{kind}.py").is_file()]
    if missing:
        raise ConfigError(
            f"{dags_folder} is not driftloop's dags folder: it has no "
            f"{', '.join(kind + '.py' for kind in missing)} (pass the folder Airflow reads)"
        )
    names = declared_names(config)
    hidden = [name for name in names if name.startswith(".")]
    if hidden:
        raise ConfigError(
            f"models {', '.join(hidden)}: a model's name may not start with '.' (its DAG "
            "file would be hidden from Airflow)"
        )
    folder = dags_folder / MODELS_FOLDER
    folder.mkdir(exist_ok=True)
    written, removed = [], []
    for name in names:
        target, text = folder / f"{name}.py", model_file_text(name)
        if target.exists():
            current = target.read_text()
            if WRITTEN_MARK not in current:
                raise ConfigError(f"{target} was not written by driftloop: move it away first")
            if current == text:
                continue
        target.write_text(text)
        written.append(target)
    for path in sorted(folder.glob("*.py")):
        if path.stem not in names and WRITTEN_MARK in path.read_text():
            path.unlink()
            removed.append(path)
    return written, removed
