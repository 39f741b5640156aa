"""The settings models: every section of the configuration, what each key means and what it
must satisfy.

Values come from one YAML file, overridable by ``DRIFTLOOP_<SECTION>__<KEY>`` variables; the
file is found, read and its relative paths resolved by :mod:`driftloop.settings_loader`
(``load_settings``), which DAGs, the CLI and the server all call. This package is the bottom of
the library: it imports nothing from driftloop outside itself, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from driftloop.config.ab import ABSettings, AirflowSettings
from driftloop.config.base import (
    KNOWN_STATISTICS,
    STATISTIC_NAMES,
    TASK_METRICS,
    Bounds,
    Section,
)
from driftloop.config.drift import DriftSettings
from driftloop.config.sections import (
    AlertSettings,
    DatabaseSettings,
    DataSettings,
    MlflowSettings,
    ModelSettings,
    MonitoringSettings,
    ScoringSettings,
    ServingSettings,
    StorageSettings,
    StreamSettings,
    TrainingSettings,
)

__all__ = [
    "KNOWN_STATISTICS",
    "STATISTIC_NAMES",
    "TASK_METRICS",
    "ABSettings",
    "AirflowSettings",
    "AlertSettings",
    "Bounds",
    "DataSettings",
    "DatabaseSettings",
    "DriftSettings",
    "MlflowSettings",
    "ModelSettings",
    "MonitoringSettings",
    "ScoringSettings",
    "Section",
    "ServingSettings",
    "Settings",
    "StorageSettings",
    "StreamSettings",
    "TrainingSettings",
    "yaml_source",
]

_yaml_path: ContextVar[Path | None] = ContextVar("driftloop_yaml_path", default=None)
# The YAML layer as a mapping the loader already read (one model of a many-model file).
_yaml_data: ContextVar[Mapping[str, Any] | None] = ContextVar("driftloop_yaml_data", default=None)


class Settings(BaseSettings):
    """All of driftloop's configuration, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLOOP_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        env_parse_none_str="null",  # DRIFTLOOP_DRIFT__SCHEDULE=null clears a value
    )

    data: DataSettings
    stream: StreamSettings = StreamSettings()
    storage: StorageSettings = StorageSettings()
    drift: DriftSettings = DriftSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    scoring: ScoringSettings = ScoringSettings()
    ab: ABSettings = ABSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    alerts: AlertSettings = AlertSettings()
    database: DatabaseSettings = DatabaseSettings()
    model: ModelSettings
    mlflow: MlflowSettings = MlflowSettings()
    airflow: AirflowSettings = AirflowSettings()

    # Reads a data file's column names; set by the loader, which may import the data code.
    _read_header: Callable[[DataSettings], list[str]] | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats YAML; explicit keyword arguments (tests) beat both.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_data, yaml_path = _yaml_data.get(), _yaml_path.get()
        if yaml_data is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=dict(yaml_data)))
        elif yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _metric_fits_the_task(self) -> Settings:
        metric, task = self.ab.metric, self.data.task
        if metric is not None and metric not in TASK_METRICS[task]:
            fits = " or ".join(TASK_METRICS[task])
            raise ValueError(f"ab.metric {metric} does not fit a {task} task: use {fits}")
        return self

    @model_validator(mode="after")
    def _paired_needs_shadow(self) -> Settings:
        if self.ab.design == "paired" and not self.serving.default_shadow:
            raise ValueError(
                "ab.design: paired compares Staging's shadow answers with Production's on the "
                "same requests, so it needs shadow mode: set serving.default_shadow: true "
                "(and keep the saved split's shadow on: driftloop traffic set --shadow)"
            )
        return self

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.storage.home / 'driftloop.db'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.storage.home / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.mlflow.artifact_root or self.storage.home / "mlartifacts"

    @property
    def feature_columns(self) -> list[str]:
        """The configured features; when the config leaves them empty, every column of the data
        file but the target and the id column (read from its header, each time, by the loader's
        reader)."""
        if self.data.features is not None:
            return list(self.data.features)
        if self._read_header is None:
            raise ValueError(
                "data.features is empty and these settings were not made by load_settings, "
                "which reads the feature columns from the data file's header"
            )
        leave_out = {self.data.target, self.data.id_column}
        return [c for c in self._read_header(self.data) if c not in leave_out]


@contextmanager
def yaml_source(source: Path | Mapping[str, Any]) -> Iterator[None]:
    """Settings made inside read ``source`` (a YAML file, or the mapping the loader read from
    one) below the environment (and explicit arguments)."""
    is_path = isinstance(source, Path)
    token_path = _yaml_path.set(source if is_path else None)
    token_data = _yaml_data.set(None if is_path else source)
    try:
        yield
    finally:
        _yaml_path.reset(token_path)
        _yaml_data.reset(token_data)
