"""The drift engine: one batch against one reference profile, to a :class:`DriftVerdict`.

Per feature it computes the configured statistics from :mod:`driftloop.drift.statistics`
(those that fit the column's kind), flags the feature by the configured rule, and calls the
batch drifted when the share of drifted features reaches ``drift.drift_share``. The target is
tested the same way and reported apart, as target drift. Missing values are left out of every
statistic; their share is its own check. A batch with fewer than ``drift.min_rows`` usable rows
gets the verdict ``insufficient_data`` and never an alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.drift.profile import NUMERIC, ColumnProfile, ReferenceProfile, category_counts
from driftloop.drift.statistics import STATISTICS, Measurement

DRIFT, NO_DRIFT, INSUFFICIENT = "drift", "no_drift", "insufficient_data"


class DriftError(ValueError):
    """A batch the engine cannot test; the message says why."""


@dataclass
class ColumnDrift:
    """One column's statistics, flags and histogram against the reference."""

    name: str
    kind: str
    count: int
    missing_share: float
    reference_missing_share: float
    measurements: dict[str, Measurement] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    drifted: bool = False
    missing_alert: bool = False
    current_probabilities: list[float] = field(default_factory=list)


@dataclass
class DriftVerdict:
    """The result of testing one batch: per-column numbers and the dataset-level verdict."""

    status: str
    rows: int
    drift_share: float
    required_share: float
    features: list[ColumnDrift]
    target: ColumnDrift | None
    thresholds: dict[str, float]
    feature_rule: str

    @property
    def drifted(self) -> bool:
        return self.status == DRIFT

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def target_drift(self) -> bool:
        return bool(self.target and self.target.drifted)

    @property
    def missing_alerts(self) -> list[str]:
        return [c.name for c in self._columns() if c.missing_alert]

    def _columns(self) -> list[ColumnDrift]:
        return [*self.features, *([self.target] if self.target else [])]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; infinite values become the string ``"inf"``."""

        def column(c: ColumnDrift) -> dict[str, Any]:
            return {
                "name": c.name,
                "kind": c.kind,
                "count": c.count,
                "missing_share": c.missing_share,
                "reference_missing_share": c.reference_missing_share,
                "missing_alert": c.missing_alert,
                "drifted": c.drifted,
                "statistics": {
                    name: {
                        "value": _json_number(m.value),
                        "flag": c.flags[name],
                        **{k: _json_number(v) for k, v in m.details.items()},
                    }
                    for name, m in c.measurements.items()
                },
                "current_probabilities": c.current_probabilities,
            }

        return {
            "status": self.status,
            "rows": self.rows,
            "drift_share": self.drift_share,
            "required_share": self.required_share,
            "drifted_features": self.drifted_features,
            "target_drift": self.target_drift,
            "missing_alerts": self.missing_alerts,
            "thresholds": self.thresholds,
            "feature_rule": self.feature_rule,
            "features": [column(c) for c in self.features],
            "target": column(self.target) if self.target else None,
        }


def _json_number(value: float) -> float | str:
    return (
        value if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    )


def check_drift(
    profile: ReferenceProfile, batch: pd.DataFrame, settings: DriftSettings
) -> DriftVerdict:
    """Test ``batch`` against ``profile``: every profiled feature, and the target if present."""
    if batch.empty:
        raise DriftError("the batch is empty: there is nothing to test for drift")
    missing = [name for name in profile.features if name not in batch.columns]
    if missing:
        raise DriftError(f"the batch lacks profiled column(s) {missing}")
    thresholds = {name: settings.threshold(name) for name in settings.statistics}
    features = [
        _column_drift(profile.columns[n], batch[n], settings, thresholds) for n in profile.features
    ]
    target = None
    if profile.target is not None and profile.target in batch.columns:
        target = _column_drift(
            profile.columns[profile.target], batch[profile.target], settings, thresholds
        )
    usable_rows = _usable_rows(profile, batch)
    share = float(np.mean([f.drifted for f in features])) if features else 0.0
    if usable_rows < settings.min_rows:
        status, share = INSUFFICIENT, 0.0
        for column in [*features, *([target] if target else [])]:
            column.drifted = False
            column.flags = dict.fromkeys(column.flags, False)
    else:
        status = DRIFT if share >= settings.drift_share else NO_DRIFT
    return DriftVerdict(
        status=status,
        rows=len(batch),
        drift_share=share,
        required_share=settings.drift_share,
        features=features,
        target=target,
        thresholds=thresholds,
        feature_rule=settings.feature_rule,
    )


def _usable_rows(profile: ReferenceProfile, batch: pd.DataFrame) -> int:
    """Rows whose every feature is usable, built column by column (no copy of the frame)."""
    usable = np.ones(len(batch), dtype=bool)
    for name in profile.features:
        if profile.columns[name].kind == NUMERIC:
            values = pd.to_numeric(batch[name], errors="coerce").to_numpy(dtype=float)
            usable &= np.isfinite(values)
        else:
            usable &= batch[name].notna().to_numpy()
    return int(usable.sum())


def _column_drift(
    column: ColumnProfile, series: pd.Series, settings: DriftSettings, thresholds: dict[str, float]
) -> ColumnDrift:
    if column.kind == NUMERIC:
        current = _sorted_finite(series)
        counts = column.histogram(current, assume_sorted=True)
        count = current.size
    else:  # categorical statistics take the counts per bin (see driftloop.drift.statistics)
        current = counts = column.level_histogram(category_counts(series))
        count = int(counts.sum())
    missing_share = 1.0 - count / len(series)
    result = ColumnDrift(
        name=column.name,
        kind=column.kind,
        count=count,
        missing_share=float(missing_share),
        reference_missing_share=column.missing_share,
        missing_alert=missing_share - column.missing_share > settings.max_missing_increase,
    )
    if count == 0 or column.count == 0:
        return result
    result.current_probabilities = (counts / counts.sum()).tolist()
    for name, threshold in thresholds.items():
        statistic = STATISTICS[name]
        if column.kind not in statistic.column_kinds:
            continue
        measurement = statistic.compute(column, current)
        result.measurements[name] = measurement
        result.flags[name] = measurement.value >= threshold
    decide = any if settings.feature_rule == "any" else all
    result.drifted = bool(result.flags) and decide(result.flags.values())
    return result


def _sorted_finite(series: pd.Series) -> np.ndarray:
    """The finite values of a numeric column, sorted: one copy of the column, no mask.

    NaN sorts last with the infinities next to it, so the finite values are one slice of the
    sorted copy; text that is not a number counts as missing (NaN), like infinities.
    """
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, copy=True)
    values.sort()  # in place: the copy above is the only full-length array made
    start = np.searchsorted(values, -np.inf, side="right")
    stop = np.searchsorted(values, np.inf, side="left")
    return values[start:stop]
