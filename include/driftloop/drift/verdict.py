"""What a drift check finds: per statistic, per column and for the batch, and the report's
JSON shape (``DriftVerdict.to_dict``, versioned by ``REPORT_FORMAT``).

Its own module so that the statistics' tests (``categorical``, ``permutation``) and the engine
that runs them all import these types from below, with no import circle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from driftloop.drift.multivariate import MultivariateTest
from driftloop.drift.segments import SegmentTest
from driftloop.drift.statistics import Measurement
from driftloop.vocabulary import DriftStatus, ThresholdMode

REPORT_FORMAT = 5
"""Version of :meth:`DriftVerdict.to_dict` (1: fixed thresholds, no ``format_version`` key;
2: calibrated; 3: categorical statistics carry their permutation test's numbers; 4: the
multivariate test, ``multivariate``, null when not run; ``segments``, empty without
``drift.segment_by``; 5: ``segments_call_drift`` and each segment's ``adjusted_p``)."""
CALIBRATED, FIXED = ThresholdMode.CALIBRATED, ThresholdMode.FIXED


@dataclass(frozen=True)
class StatisticTest:
    """One statistic on one column: its value, what it was held to, and which bar decided.

    ``threshold`` is the value the statistic had to exceed: calibrated to the batch's size
    (at ``level``) or fixed. ``decided_by`` names the higher bar, the one that mattered:
    ``threshold``, ``floor`` or ``fixed``.
    """

    measurement: Measurement
    threshold: float
    floor: float
    flag: bool
    decided_by: str
    p_value: float | None = None
    level: float | None = None
    sketch_bound: float | None = None  # sketched batches: the value's error bound, in its units

    @property
    def value(self) -> float:
        return self.measurement.value


@dataclass
class ColumnDrift:
    """One column's statistics, flags and histogram against the reference."""

    name: str
    kind: str
    count: int
    missing_share: float
    reference_missing_share: float
    tests: dict[str, StatisticTest] = field(default_factory=dict)
    tested: bool = False
    drifted: bool = False
    missing_alert: bool = False
    current_probabilities: list[float] = field(default_factory=list)

    def p_value(self, rule: str) -> float | None:
        """The feature's p-value under no drift (None in fixed mode; 1 when not flagged, so
        the floor still gates): under ``any`` the smallest of its statistics' times their
        number (Bonferroni), under ``all`` the largest."""
        values = [t.p_value for t in self.tests.values() if t.p_value is not None]
        if not values:
            return None
        if not self.drifted:
            return 1.0
        return min(1.0, min(values) * len(values)) if rule == "any" else max(values)

    @property
    def measurements(self) -> dict[str, Measurement]:
        return {name: test.measurement for name, test in self.tests.items()}

    @property
    def flags(self) -> dict[str, bool]:
        return {name: test.flag for name, test in self.tests.items()}


@dataclass
class DriftVerdict:
    """The result of testing one batch: per-column numbers and the dataset-level verdict."""

    status: DriftStatus
    rows: int
    drift_share: float
    required_share: float
    features: list[ColumnDrift]
    target: ColumnDrift | None
    statistics: list[str]
    feature_rule: str
    mode: str = CALIBRATED
    false_alarm_rate: float | None = None
    floors: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)  # fixed mode only
    min_rows: int = 0
    sketched: bool = False  # streamed by row group into summaries (driftloop.drift.sketch)
    # calibrated mode: the batch test over features (see verdict_of); None in fixed mode
    batch_test: dict[str, float] | None = None
    # the features tested together (driftloop.drift.multivariate); None when not run
    multivariate: MultivariateTest | None = None
    multivariate_calls_drift: bool = False  # drift.multivariate_retrain when it ran
    segments: list[SegmentTest] = field(default_factory=list)  # drifted first
    segments_call_drift: bool = False  # drift.segment_retrain, and a segment drifted at its level
    weighting: str = "count"  # "importance": features weighed by the version's mean |SHAP|
    importance_share: float | None = None  # the drifted features' share of the importance

    @property
    def drifted(self) -> bool:
        return self.status == DriftStatus.DRIFT

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def tested_features(self) -> list[str]:
        return [f.name for f in self.features if f.tested]

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
                "tested": c.tested,
                "drifted": c.drifted,
                "statistics": {
                    name: {
                        "value": _json_number(t.value),
                        "threshold": _json_number(t.threshold),
                        "floor": t.floor,
                        "p_value": t.p_value,
                        "level": t.level,
                        "decided_by": t.decided_by,
                        "flag": t.flag,
                        **({} if t.sketch_bound is None else {"sketch_bound": t.sketch_bound}),
                        **{k: _json_number(v) for k, v in t.measurement.details.items()},
                    }
                    for name, t in c.tests.items()
                },
                "current_probabilities": c.current_probabilities,
            }

        return {
            "format_version": REPORT_FORMAT,
            "status": self.status,
            "rows": self.rows,
            "drift_share": self.drift_share,
            "required_share": self.required_share,
            "drifted_features": self.drifted_features,
            "tested_features": self.tested_features,
            "target_drift": self.target_drift,
            "missing_alerts": self.missing_alerts,
            "mode": self.mode,
            "statistics": self.statistics,
            "false_alarm_rate": self.false_alarm_rate,
            "floors": self.floors,
            "thresholds": self.thresholds,
            "min_rows": self.min_rows,
            "feature_rule": self.feature_rule,
            **({"sketched": True} if self.sketched else {}),
            "batch_test": self.batch_test,
            "segments": [segment.to_dict() for segment in self.segments],
            "drifted_segments": [
                f"{segment.column}={segment.value}" for segment in self.segments if segment.flagged
            ],
            "segments_call_drift": self.segments_call_drift,
            "weighting": self.weighting,
            "importance_share": self.importance_share,
            "multivariate": (
                {**self.multivariate.to_dict(), "calls_drift": self.multivariate_calls_drift}
                if self.multivariate
                else None
            ),
            "features": [column(c) for c in self.features],
            "target": column(self.target) if self.target else None,
        }


def _json_number(value: float) -> float | str:
    return (
        value if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    )
