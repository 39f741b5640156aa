"""Every model of a deployment at a glance: one row per model (Production, Staging, the last
drift verdict, the A/B test), the one home of that summary for ``driftloop models`` and the
plugin's overview page.

A deployment is the models one configuration declares (issue 30). Each model is loaded on its
own, so a broken entry, an unmigrated database or an unreachable registry costs that model's
row only and says why in it, as a broken model's DAG file fails alone in Airflow. Each row's
pieces come from the per-model page's own reads (``driftloop.ui.overview``), so the row and
the page never disagree.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop.config import Settings
from driftloop.settings_loader import ConfigError, config_path, declared_names, load_settings
from driftloop.storage import session_scope
from driftloop.vocabulary import Role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSummary:
    """One model's row. ``drift`` is its latest drift check as the per-model page lists it
    (``overview.drift_checks``); ``ab`` its running A/B test, else its latest one; ``error``
    what kept part of the row from being read (the rest is still shown)."""

    model: str
    production: str | None = None
    staging: str | None = None
    drift: dict[str, Any] | None = None
    ab: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_summary(settings: Settings, engine: sa.Engine) -> ModelSummary:
    """One model's row, read from its registry and its database now."""
    from driftloop.ui.overview import drift_checks, versions

    name = settings.model.name
    found = versions(settings)  # an unreachable registry is said in ``error``, not raised
    checks = drift_checks(engine, name, limit=1)
    return ModelSummary(
        model=name,
        production=_number(found.get(Role.PRODUCTION)),
        staging=_number(found.get(Role.STAGING)),
        drift=checks[0] if checks else None,
        ab=ab_state(engine, name),
        error=found.get("error"),
    )


def ab_state(engine: sa.Engine, model: str) -> dict[str, Any] | None:
    """``model``'s running A/B test (else its latest) in a few words: id, status, versions."""
    from driftloop.ui.overview import shown_test

    with session_scope(engine) as session:
        test = shown_test(session, model)
        if test is None:
            return None
        return {
            "id": test.id,
            "status": test.status,
            "production_version": test.production_version,
            "staging_version": test.staging_version,
            "started_at": test.started_at.isoformat() if test.started_at else None,
            "ended_at": test.ended_at.isoformat() if test.ended_at else None,
        }


def _number(info: dict[str, Any] | None) -> str | None:
    return None if info is None else str(info["version"])


class UnknownModel(LookupError):
    """A model name the configuration does not declare; the message lists those it does."""


@dataclass
class Deployment:
    """The models one configuration declares, each loaded alone (a broken one kept with its
    error), and one engine per database, opened on first use and shared by the models that
    share it. Safe to share between threads (the plugin's requests run in a thread pool)."""

    config: Path
    many: bool  # the file has ``models:``: pages and commands name the model they act on
    loaded: dict[str, Settings | ConfigError]
    _engines: dict[str, sa.Engine] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def names(self) -> list[str]:
        return list(self.loaded)

    def settings(self, name: str | None = None) -> Settings:
        """``name``'s settings (``None``: the only model); :class:`UnknownModel` naming the
        declared models, or the model's own :class:`ConfigError` when its entry is broken."""
        if name is None:
            if len(self.loaded) > 1:
                raise UnknownModel(
                    f"{self.config} declares {len(self.loaded)} models "
                    f"({', '.join(self.loaded)}), so a model must be named"
                )
            name = self.names[0]
        found = self.loaded.get(name)
        if found is None:
            declared = ", ".join(self.loaded)
            raise UnknownModel(f"no model {name!r}: {self.config} declares {declared}")
        if isinstance(found, ConfigError):
            raise found
        return found

    def engine(self, settings: Settings) -> sa.Engine:
        """The model's database (created on first use when it is the embedded default)."""
        from driftloop.database import open_database

        with self._lock:
            url = settings.database_url
            if url not in self._engines:
                self._engines[url] = open_database(settings)
            return self._engines[url]

    def summaries(self) -> list[ModelSummary]:
        """Every model's row, in the configuration's order."""
        rows = []
        for name, found in self.loaded.items():
            if isinstance(found, ConfigError):
                rows.append(ModelSummary(model=name, error=str(found)))
                continue
            try:
                rows.append(model_summary(found, self.engine(found)))
            except Exception as exc:  # a database that refuses costs this model's row only
                log.warning("models: %s could not be read: %s", name, exc)
                rows.append(ModelSummary(model=name, error=f"{type(exc).__name__}: {exc}"))
        return rows

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def load_deployment(path: str | os.PathLike[str] | None = None) -> Deployment:
    """The models ``path`` (else ``$DRIFTLOOP_CONFIG``, else ``./driftloop.yaml``) declares. A
    file without ``models:`` is one model, and its error is the whole file's (raised); with
    ``models:`` each entry is validated alone."""
    names = declared_names(path)
    yaml_file = config_path(path)
    if not names:
        settings = load_settings(yaml_file)
        return Deployment(yaml_file, False, {settings.model.name: settings})
    loaded: dict[str, Settings | ConfigError] = {}
    for name in names:
        try:
            loaded[name] = load_settings(yaml_file, model=name)
        except ConfigError as exc:
            loaded[name] = exc
    return Deployment(yaml_file, True, loaded)
