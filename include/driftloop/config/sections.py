"""The sections of the configuration, one model each: what every key means and must satisfy."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

from driftloop.config.base import Bounds, Section


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
    id_column: str | None = Field(
        default=None,
        description="A row identifier in batches (never a feature); late labels join on it.",
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
        if self.id_column is not None and self.id_column in {*features, self.target}:
            raise ValueError(f"id_column {self.id_column!r} is a feature or the target")
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


class TrainingSettings(Section):
    """PyCaret AutoML, the training window, and the gate a challenger must pass."""

    models: list[str] = Field(
        default_factory=lambda: [
            *("et_ordinal", "rf_ordinal", "et", "rf", "lightgbm", "xgboost", "lr")
        ],
        description=(
            "Model ids compared: PyCaret's, plus et_ordinal and rf_ordinal (forests deciding on"
            " the expected grade, for numeric class labels; left out elsewhere). Empty:"
            " PyCaret's defaults."
        ),
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
    retry_delay_seconds: float = Field(
        default=30.0, gt=0.0, le=3600.0, description="Wait before Airflow retries a retrain task."
    )


class ServingSettings(Section):
    """The prediction server. Keys and tokens come from the environment, never from here:
    ``DRIFTLOOP_ADMIN_TOKEN`` and ``DRIFTLOOP_API_KEYS`` (comma-separated)."""

    default_staging_weight: float = Field(default=0.1, ge=0.0, le=1.0)
    default_shadow: bool = Field(
        default=False,
        description="Staging also answers Production's requests in shadow until a split is saved.",
    )
    require_api_key: bool = Field(
        default=False, description="Feedback steers promotions: production configs should say true."
    )
    sticky_field: str = Field(
        default="client_id", description="Record field (or X-Client-Key header)."
    )
    max_records: PositiveInt = 1000
    explain_max_records: PositiveInt = Field(
        default=20,
        description="Records per /explain request (SHAP costs far more than predicting).",
    )
    max_body_bytes: PositiveInt = 2_000_000
    max_missing_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Most a record may leave missing, as a share."
    )
    micro_batch_max: PositiveInt = 64
    micro_batch_wait_ms: float = Field(default=1.0, ge=0.0, le=1000.0)
    poll_seconds: float = Field(default=10.0, gt=0.0)
    retention_days: float = Field(default=30.0, gt=0.0)
    max_loaded_models: PositiveInt = Field(
        default=10,
        description="Models a server worker keeps loaded with many models declared: the least "
        "recently used one is unloaded beyond it (and loaded again on its next request).",
    )
    max_loaded_memory_mb: float | None = Field(
        default=None,
        gt=0.0,
        description="Memory a server worker may give its loaded models, summed from each one's "
        "growth of the worker's RSS at load; beyond it the least recently used are unloaded "
        "(the newest stays). Empty: no budget, only max_loaded_models.",
    )


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


class MonitoringSettings(Section):
    """Production's performance on labelled rows (realized) and before labels (estimated);
    see ``driftloop.performance``. A drop is judged against the version's out-of-sample
    estimate: decay when a one-sided test at ``alpha`` finds the metric worse AND the drop is
    at least ``min_drop``, so neither noise on small batches nor a trivial drop on huge ones
    decays."""

    alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description=(
            "Level of each one-sided drop test (false alarms per check on a healthy model)."
        ),
    )
    min_drop: float = Field(
        default=0.03,
        ge=0.0,
        lt=1.0,
        description=(
            "Smallest drop that matters: accuracy points, or a fraction of the reference error."
        ),
    )
    min_rows: PositiveInt = Field(
        default=30, description="Labelled rows a batch or day needs before it is judged."
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="Level of the intervals shown with each metric."
    )
    reference_folds: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Folds of the cross-validated reference when a version has no gate holdout.",
    )
    estimate: bool = Field(
        default=True, description="Estimate accuracy and F1 before labels (classification)."
    )
    traffic_window: timedelta = Field(
        default=timedelta(hours=1),
        description=(
            "The served traffic's drift windows (driftloop.stages.traffic_check): the prediction "
            "log's inputs of each window against Production's reference. A duration: 30m, 1h, "
            "1d, seconds (3600) or ISO 8601 (PT1H); from 1 minute to 7 days."
        ),
    )
    traffic_min_rows: PositiveInt = Field(
        default=200,
        description=(
            "Served records a traffic window needs to be tested; a window with fewer is stored "
            "as insufficient_data."
        ),
    )

    @field_validator("traffic_window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """Durations as people write them (``30m``, ``1h``, ``1d``, ``90s``) and seconds as text
        (an environment variable's value), beside what pydantic reads itself."""
        if isinstance(value, str):
            found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
            if found:
                unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
                return timedelta(seconds=float(found.group(1)) * unit)
        return value

    @field_validator("traffic_window")
    @classmethod
    def _window_range(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=7):
            raise ValueError(f"must be from 1 minute to 7 days, not {value}")
        return value


class AlertSettings(Section):
    """Where the loop's events are posted (``driftloop.stages.alerts``); empty: no alerts."""

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
