"""The sections of the configuration, one model each: what every key means and must satisfy."""

from __future__ import annotations

import logging
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

from driftloop.config.base import KNOWN_STATISTICS, Bounds, Section

MULTIVARIATE_SHARE = 0.5
"""The multivariate drift test's share of ``drift.false_alarm_rate`` (its level is that share
whether or not it may call drift, so the numbers a report shows do not change with the rule)."""
SEGMENT_SHARE = 0.25
"""The segments' share of ``drift.false_alarm_rate`` when a flagged segment may call drift
(``drift.segment_retrain``): the level of the Benjamini-Hochberg test across segments that
decides the batch, beside ``drift.segment_fdr``, which decides what the report flags."""


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
        description=(
            "Fixed per-statistic thresholds (fixed mode, not recommended); empty: calibrated."
        ),
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
        description=(
            "Up to this many reference values per column are kept exactly; beyond, a sketch."
        ),
    )
    exact_batch_max: int = Field(
        default=1_000_000,
        ge=1_000,
        description=(
            "Batches (Parquet) of up to this many rows are read whole and tested exactly; "
            "larger ones are streamed by row group into mergeable summaries, and the "
            "Wasserstein distance carries its error bound (see driftloop.drift.sketch)."
        ),
    )
    max_missing_increase: float = Field(default=0.1, ge=0.0, le=1.0)
    weighting: Literal["count", "importance"] = Field(
        default="count",
        description=(
            "How the batch verdict counts drifted features: each as one (count), or by the "
            "Production version's mean absolute SHAP value (importance; count without one)."
        ),
    )
    segment_by: list[str] = Field(
        default_factory=list,
        description=(
            "Columns whose values are segments (a region, a product line): each segment with "
            "segment_min_rows rows is also tested on its own (driftloop.drift.segments)."
        ),
    )
    segment_fdr: float = Field(
        default=0.01, gt=0.0, lt=0.5, description="False-discovery rate across segments."
    )
    segment_min_rows: PositiveInt = Field(
        default=200, description="Rows a segment needs, in the reference and in a batch."
    )
    segment_retrain: bool = Field(
        default=False,
        description=(
            "A drifted segment alone may call a batch drift (and start a retrain): the segments "
            "then take a quarter of false_alarm_rate, and the per-feature verdict what the "
            "other detectors leave, so all of them together keep false_alarm_rate."
        ),
    )
    multivariate: bool = Field(
        default=True,
        description=(
            "Also test the features together (PCA reconstruction error, "
            "driftloop.drift.multivariate): shown in every report and on /metrics."
        ),
    )
    multivariate_retrain: bool = Field(
        default=False,
        description=(
            "The multivariate test alone may call a batch drift (and start a retrain); it then "
            "takes half of false_alarm_rate and the per-feature verdict the other half."
        ),
    )
    multivariate_floor: float = Field(
        default=0.1,
        ge=0.0,
        description="The smallest relative increase of the mean reconstruction error flagged.",
    )
    min_reference_rows: PositiveInt = Field(
        default=200,
        description=(
            "A retrained version's reference is the rows since the drift when there are at "
            "least this many; else its whole training set (driftloop.stages.training_data)."
        ),
    )
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

    @property
    def multivariate_level(self) -> float:
        """The multivariate test's level: its share of ``false_alarm_rate``."""
        return self.false_alarm_rate * MULTIVARIATE_SHARE

    @property
    def segment_level(self) -> float:
        """The level at which a drifted segment calls the batch drift (segment_retrain)."""
        return self.false_alarm_rate * SEGMENT_SHARE

    @property
    def verdict_rate(self) -> float:
        """What the per-feature batch verdict may spend: what the detectors allowed to call
        drift on their own (multivariate, segments) leave of ``false_alarm_rate``. By the
        union bound a clean batch is then called drift at most ``false_alarm_rate`` of the
        time in all."""
        share = 1.0
        if self.multivariate and self.multivariate_retrain:
            share -= MULTIVARIATE_SHARE
        if self.segment_by and self.segment_retrain:
            share -= SEGMENT_SHARE
        return self.false_alarm_rate * share

    def level(self, statistics_tested: int) -> float:
        """Each statistic's false-alarm level: under ``any`` a feature's statistics share the
        rate (Bonferroni); under ``all`` each may use all of it, since all must cross."""
        if self.feature_rule == "all":
            return self.false_alarm_rate
        return self.false_alarm_rate / max(statistics_tested, 1)


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
