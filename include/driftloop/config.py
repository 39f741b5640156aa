"""The settings models: every section of the configuration, what each key means and what it
must satisfy.

Values come from one YAML file, overridable by ``DRIFTLOOP_<SECTION>__<KEY>`` variables; the
file is found, read and its relative paths resolved by :mod:`driftloop.settings_loader`
(``load_settings``), which DAGs, the CLI and the server all call. This module is the bottom of
the library: it imports nothing else from driftloop, so anything may import it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

STATISTIC_NAMES = ("mean_shift", "wasserstein", "jensen_shannon")
"""The drift statistics ``driftloop.drift.statistics`` registers (a test keeps the two equal),
listed here so that validating a config imports nothing of the drift code."""
KNOWN_STATISTICS = set(STATISTIC_NAMES)
"""What a config may name: those, and any statistic registered later (``register`` adds it)."""
TASK_METRICS = {"classification": ("accuracy",), "regression": ("mae", "rmse")}
"""The ab.metric values each task allows: the metrics of ``driftloop.task``'s task kinds (a
test keeps the two equal), listed here for the same reason."""

_yaml_path: ContextVar[Path | None] = ContextVar("driftloop_yaml_path", default=None)


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Bounds(Section):
    """Hard limits a value must respect to be usable at all (not merely usual)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class DataSettings(Section):
    """What the data set is and which columns the model uses."""

    path: Path
    format: Literal["csv", "parquet"] = "csv"
    separator: str = ","
    target: str
    task: Literal["classification", "regression"]
    features: list[str] | None = Field(
        default=None, description="Feature columns; empty means every column but the target."
    )
    categorical_features: list[str] = Field(default_factory=list)
    nullable_features: list[str] = Field(
        default_factory=list,
        description="Features a request may leave missing for every version, beside those "
        "missing in the version's training data.",
    )
    bounds: dict[str, Bounds] = Field(default_factory=dict)
    max_missing_share: float = Field(default=0.2, ge=0.0, le=1.0)
    drift_source: Path | None = Field(
        default=None,
        description="A second source of rows for the gradual-shift scenario; never a feature.",
    )

    @field_validator("separator")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _columns_consistent(self) -> DataSettings:
        features = self.features or []
        if self.target in features:
            raise ValueError(f"target {self.target!r} is also listed in features")
        if len(set(features)) != len(features):
            raise ValueError("features list a column twice")
        if self.features is not None:
            unknown = sorted(set(self.categorical_features) - set(features))
            if unknown:
                raise ValueError(f"categorical_features not in features: {unknown}")
            unknown = sorted(set(self.nullable_features) - set(features))
            if unknown:
                raise ValueError(f"nullable_features not in features: {unknown}")
            unbounded = sorted(set(self.bounds) - set(features) - {self.target})
            if unbounded:
                raise ValueError(
                    f"bounds name columns that are not features or target: {unbounded}"
                )
        return self


class StreamSettings(Section):
    """How the data set is cut into a replayed stream of time-stamped batches."""

    batch_size: PositiveInt = 250
    reference_share: float = Field(default=0.3, gt=0.0, lt=1.0)
    interval_minutes: PositiveInt = 60
    start_time: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 42


class StorageSettings(Section):
    """Where driftloop keeps its files; every runtime folder lives below ``home``."""

    home: Path = Path("var")

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def accepted_dir(self) -> Path:
        return self.home / "batches"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def reference_dir(self) -> Path:
        return self.home / "reference"

    @property
    def profiles_dir(self) -> Path:
        return self.home / "profiles"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def scoring_dir(self) -> Path:
        """Batch scoring: ``inbox/`` to score, ``out/`` answers, ``done/`` scored inputs,
        ``quarantine/`` files with no usable row."""
        return self.home / "scoring"


class DriftSettings(Section):
    """How batches are tested against the reference (see ``driftloop.drift``).

    By default thresholds are calibrated: a statistic flags a feature when its p-value under
    "no drift" for this batch's size is at most its share of ``false_alarm_rate`` and its value
    is at least its ``effect_floor``. A config that sets ``thresholds`` runs in fixed mode.
    """

    statistics: list[str] = Field(
        default_factory=lambda: ["mean_shift", "wasserstein", "jensen_shannon"],
        description="Statistics computed per feature; names from driftloop.drift.statistics.",
    )
    false_alarm_rate: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description="Chance that a feature is flagged in a batch without drift (per feature).",
    )
    effect_floor: dict[str, float] = Field(
        default_factory=dict,
        description="Per-statistic effect sizes below which nothing is flagged; unset: default.",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Fixed per-statistic thresholds (fixed mode, not recommended); empty: calibrated.",
    )
    calibration_draws: int = Field(
        default=1000,
        ge=200,
        le=100_000,
        description="Draws of each statistic under no drift, per column, at profile build.",
    )
    feature_rule: Literal["any", "all"] = Field(
        default="any", description="A feature drifts when any (or all) of its statistics cross."
    )
    drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    min_rows: PositiveInt = 30
    bins: int = Field(default=10, ge=2, le=1000)
    exact_reference_max: PositiveInt = Field(
        default=100_000,
        description="Up to this many reference values per column are kept exactly; beyond, a sketch.",
    )
    max_missing_increase: float = Field(default=0.1, ge=0.0, le=1.0)
    schedule: str | None = Field(default="@hourly", description="drift_monitor's Airflow schedule.")

    @model_validator(mode="after")
    def _known_statistics(self) -> DriftSettings:
        named = set(self.statistics) | set(self.thresholds) | set(self.effect_floor)
        unknown = sorted(named - KNOWN_STATISTICS)
        if unknown:
            raise ValueError(f"unknown statistic(s) {unknown}; known: {sorted(KNOWN_STATISTICS)}")
        if not self.statistics:
            raise ValueError("choose at least one statistic")
        negative = sorted(name for name, floor in self.effect_floor.items() if floor < 0)
        if negative:
            raise ValueError(f"effect_floor must be at least 0, not for {negative}")
        tail = (self.calibration_draws + 1) * self.level(len(self.statistics))
        if not self.fixed and tail < 3:
            raise ValueError(
                f"false_alarm_rate {self.false_alarm_rate} shared by {len(self.statistics)} "
                f"statistic(s) leaves {tail:.1f} of calibration_draws={self.calibration_draws} "
                "in the tail; raise calibration_draws (3 or more draws are needed)"
            )
        if self.fixed:
            logging.getLogger("driftloop.config").warning(
                "drift.thresholds is set: drift runs in fixed mode, with the same thresholds at "
                "every batch size; remove drift.thresholds to use calibrated thresholds "
                "(drift.false_alarm_rate, drift.effect_floor)"
            )
        return self

    @property
    def fixed(self) -> bool:
        """Fixed mode: the config sets thresholds, which apply at every batch size."""
        return bool(self.thresholds)

    def level(self, statistics_tested: int) -> float:
        """Each statistic's false-alarm level: under ``any`` a feature's statistics share the
        rate (Bonferroni); under ``all`` each may use all of it, since all must cross."""
        if self.feature_rule == "all":
            return self.false_alarm_rate
        return self.false_alarm_rate / max(statistics_tested, 1)


class TrainingSettings(Section):
    """PyCaret AutoML, the training window, and the gate a challenger must pass."""

    models: list[str] = Field(
        default_factory=lambda: ["et", "rf", "lightgbm", "xgboost", "lr"],
        description="PyCaret model ids compared; empty means PyCaret's default list.",
    )
    folds: int = Field(default=10, ge=2, le=20)
    optimize: str | None = Field(
        default=None, description="PyCaret metric to sort by; empty: Accuracy or MAE by task."
    )
    budget_minutes: float = Field(default=2.0, gt=0.0)
    window_batches: PositiveInt = Field(
        default=10, description="Recent accepted, labelled batches added to the training data."
    )
    holdout_share: float = Field(
        default=0.4, gt=0.0, lt=1.0, description="Newest share of rows since the drift kept out."
    )
    tolerance: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Non-inferiority margin: accuracy points, or a fraction of Production's error.",
    )
    gate_alpha: float = Field(
        default=0.05, gt=0.0, lt=0.5, description="Error rate of each one-sided gate decision."
    )
    min_holdout: int = Field(
        default=80, ge=10, description="Fewer gate holdout rows: insufficient evidence."
    )
    gate_retries: int = Field(
        default=3, ge=0, le=20, description="Re-gates of an undecided version on a grown holdout."
    )
    cooldown_minutes: float = Field(default=0.0, ge=0.0)
    replace_staging: bool = False
    seed: int = 42
    python: Path | None = Field(
        default=None, description="Another interpreter for the ML tasks (@task.external_python)."
    )
    retries: int = Field(default=1, ge=0, le=10)


class ServingSettings(Section):
    """The prediction server. Keys and tokens come from the environment, never from here:
    ``DRIFTLOOP_ADMIN_TOKEN`` and ``DRIFTLOOP_API_KEYS`` (comma-separated)."""

    default_staging_weight: float = Field(default=0.1, ge=0.0, le=1.0)
    require_api_key: bool = Field(
        default=False, description="Feedback steers promotions: production configs should say true."
    )
    sticky_field: str = Field(
        default="client_id", description="Record field (or X-Client-Key header)."
    )
    max_records: PositiveInt = 1000
    max_body_bytes: PositiveInt = 2_000_000
    max_missing_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Most a record may leave missing, as a share."
    )
    micro_batch_max: PositiveInt = 64
    micro_batch_wait_ms: float = Field(default=1.0, ge=0.0, le=1000.0)
    poll_seconds: float = Field(default=10.0, gt=0.0)
    retention_days: float = Field(default=30.0, gt=0.0)


class ScoringSettings(Section):
    """Batch scoring of files with the Production version (``driftloop score``, ``batch_score``)."""

    chunk_rows: PositiveInt = Field(
        default=50_000, description="Rows read, checked, predicted and written at a time."
    )
    log_predictions: bool = Field(
        default=True, description="Log every scored row (marked batch) in the prediction log."
    )
    schedule: str | None = Field(
        default="*/10 * * * *",
        description="How often batch_score looks in the inbox; empty: only when triggered.",
    )


class ABSettings(Section):
    """The A/B test between Staging and Production, and Production's health (``driftloop.ab``)."""

    metric: Literal["accuracy", "mae", "rmse"] | None = Field(
        default=None,
        description="Decision metric; empty: accuracy (classification) or mae (regression).",
    )
    alpha: float = Field(
        default=0.05, gt=0.0, lt=0.5, description="Significance level of the sequential test."
    )
    min_samples: PositiveInt = Field(
        default=200, description="Records with feedback per variant before any decision."
    )
    min_effect: float = Field(
        default=0.02,
        gt=0.0,
        description="Minimum detectable effect in metric units; sets the test's mixture scale.",
    )
    max_days: float = Field(
        default=7.0, gt=0.0, description="An inconclusive test ends here and keeps Production."
    )
    max_error_rate: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Guardrail: Staging's share of failed requests."
    )
    max_p99_ms: float = Field(default=500.0, gt=0.0, description="Guardrail: Staging's p99.")
    guardrail_min_requests: PositiveInt = Field(
        default=50, description="Staging requests before a guardrail may reject."
    )
    decay_window: PositiveInt = Field(
        default=500, description="Production's recent records with feedback, per health check."
    )
    decay_limit: float = Field(
        default=0.05,
        gt=0.0,
        description="Decay when the recent metric is this much worse than the version's first window.",
    )
    schedule: str | None = Field(default="@hourly", description="ab_evaluate's Airflow schedule.")


class AlertSettings(Section):
    """Where the loop's events are posted (``driftloop.alerts``); empty: no alerts."""

    webhook_url: str | None = Field(
        default=None, description="Receives a JSON message per event (drift, retrain, promotion)."
    )
    timeout_seconds: float = Field(default=5.0, gt=0.0)
    attempts: PositiveInt = Field(default=3, description="Tries before an alert is given up.")


class DatabaseSettings(Section):
    """driftloop's own tables; empty ``url`` means SQLite under ``storage.home``."""

    url: str | None = None


class ModelSettings(Section):
    """The model as the MLflow registry knows it."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")


class MlflowSettings(Section):
    """MLflow tracking; empty values mean SQLite and local artifacts under ``storage.home``."""

    tracking_uri: str | None = None
    artifact_root: Path | None = None
    experiment: str = "driftloop"


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
    alerts: AlertSettings = AlertSettings()
    database: DatabaseSettings = DatabaseSettings()
    model: ModelSettings
    mlflow: MlflowSettings = MlflowSettings()

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
        yaml_path = _yaml_path.get()
        if yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _metric_fits_the_task(self) -> Settings:
        metric, task = self.ab.metric, self.data.task
        if metric is not None and metric not in TASK_METRICS[task]:
            fits = " or ".join(TASK_METRICS[task])
            raise ValueError(f"ab.metric {metric} does not fit a {task} task: use {fits}")
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
        file but the target (read from its header, each time, by the loader's reader)."""
        if self.data.features is not None:
            return list(self.data.features)
        if self._read_header is None:
            raise ValueError(
                "data.features is empty and these settings were not made by load_settings, "
                "which reads the feature columns from the data file's header"
            )
        return [c for c in self._read_header(self.data) if c != self.data.target]


@contextmanager
def yaml_source(path: Path) -> Iterator[None]:
    """Settings made inside read ``path`` below the environment (and explicit arguments)."""
    token = _yaml_path.set(path)
    try:
        yield
    finally:
        _yaml_path.reset(token)
