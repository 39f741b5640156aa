"""The ``drift`` section: how batches (and served traffic) are tested against the reference,
and how the detectors allowed to call drift share one false-alarm budget. Its own module: the
largest section, and the one the drift methods read."""

from __future__ import annotations

import logging
import math
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from driftloop.config.base import KNOWN_STATISTICS, Section

MULTIVARIATE_SHARE = 0.5
"""The multivariate drift test's share of ``drift.false_alarm_rate`` (its level is that share
whether or not it may call drift, so the numbers a report shows do not change with the rule)."""
MAX_DRAWS = 100_000
"""The most null draws per statistic and column (``calibration_draws`` and the raised count)."""
SEGMENT_SHARE = 0.25
"""The segments' share of ``drift.false_alarm_rate`` when a flagged segment may call drift
(``drift.segment_retrain``): the level of the Benjamini-Hochberg test across segments that
decides the batch, beside ``drift.segment_fdr``, which decides what the report flags."""


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
        le=MAX_DRAWS,
        description=(
            "Draws of each statistic under no drift, per column, at profile build (and splits "
            "per permutation test); raised where the batch verdict's bar needs more (draws)."
        ),
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
        if not self.fixed and self.verdict_draws > MAX_DRAWS:
            raise ValueError(
                f"the batch verdict's bar, drift_share {self.drift_share} x the rate the "
                f"per-feature verdict may spend ({self.verdict_rate:g}), needs "
                f"{self.verdict_draws:,} null draws per statistic to be resolved, more than "
                f"{MAX_DRAWS:,}; raise drift_share or false_alarm_rate"
            )
        tail = (self.draws + 1) * self.level(len(self.statistics))
        if not self.fixed and tail < 3:
            raise ValueError(
                f"false_alarm_rate {self.false_alarm_rate} shared by {len(self.statistics)} "
                f"statistic(s) leaves {tail:.1f} of {self.draws} null draws "
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

    @property
    def verdict_draws(self) -> int:
        """The draws the batch verdict's smallest bar needs resolved.

        A feature's p-value is at least ``S / (draws + 1)`` (``S`` statistics under ``any``,
        Bonferroni), and the verdict's bar is at least ``drift_share x verdict_rate`` (the k-th
        smallest p-value against ``k x rate / m``, ``k / m >= drift_share``; the importance
        bar is exactly that). Fewer draws would leave a bar nothing can pass, and raising the
        bar instead would spend more than ``verdict_rate``: with every detector on, 3 features
        of 1,000 rows were called drift in 1.05% of clean batches at 1,000 draws.
        """
        statistics = len(self.statistics) if self.feature_rule == "any" else 1
        return math.ceil(statistics / (self.drift_share * self.verdict_rate) - 1e-6) - 1

    @property
    def draws(self) -> int:
        """The null draws (and permutation splits) per statistic actually used:
        ``calibration_draws``, raised to :attr:`verdict_draws` (1,000 at the defaults, 2,000
        with ``multivariate_retrain``, 4,000 with ``segment_retrain`` too)."""
        return max(self.calibration_draws, self.verdict_draws)

    def level(self, statistics_tested: int) -> float:
        """Each statistic's false-alarm level: under ``any`` a feature's statistics share the
        rate (Bonferroni); under ``all`` each may use all of it, since all must cross."""
        if self.feature_rule == "all":
            return self.false_alarm_rate
        return self.false_alarm_rate / max(statistics_tested, 1)
