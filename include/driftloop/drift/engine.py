"""The drift engine: one batch against one reference profile, to a :class:`DriftVerdict`.

Per feature it computes the configured statistics from :mod:`driftloop.drift.statistics`
(those that fit the column's kind) on the feature's own non-missing values, and tests each:

- calibrated mode (the default): the statistic flags when its p-value under "no drift" for a
  batch of this many values (``driftloop.drift.calibration``) is at most its level, the
  feature's ``drift.false_alarm_rate`` shared among its statistics, and its value is at least
  its ``drift.effect_floor``: the calibration keeps false alarms at the rate on small batches,
  the floor keeps huge batches from flagging differences too small to matter;
- fixed mode (``drift.thresholds`` set): the value reaching the threshold flags.

The feature drifts by the configured rule (any or all of its statistics). A feature with fewer
than ``drift.min_rows`` values is not tested; the batch drifts when the share of drifted
features among those tested reaches ``drift.drift_share``, and is ``insufficient_data`` only
when no feature could be tested. The target is tested the same way and reported apart, as
target drift. The missing share is its own check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.drift import categorical, permutation
from driftloop.drift.calibration import VALUE_NULLS, scale
from driftloop.drift.profile import NUMERIC, ColumnProfile, ReferenceProfile, category_counts
from driftloop.drift.statistics import STATISTICS, Measurement, effect_floor, fixed_threshold
from driftloop.vocabulary import DriftStatus

REPORT_FORMAT = 3
"""Version of :meth:`DriftVerdict.to_dict` (1: fixed thresholds, no ``format_version`` key;
2: calibrated; 3: categorical statistics carry their permutation test's numbers)."""
CALIBRATED, FIXED = "calibrated", "fixed"


class DriftError(ValueError):
    """A batch the engine cannot test; the message says why."""


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
    """Test ``batch`` against ``profile``: every profiled feature, and the target if present.

    In calibrated mode a profile without null draws for the configured statistics is
    calibrated here, in memory (the monitor stores it, so that happens once).
    """
    if batch.empty:
        raise DriftError("the batch is empty: there is nothing to test for drift")
    missing = [name for name in profile.features if name not in batch.columns]
    if missing:
        raise DriftError(f"the batch lacks profiled column(s) {missing}")
    if not settings.fixed:
        profile.calibrate(settings.statistics, settings.calibration_draws)
    features = [_column_drift(profile.columns[n], batch[n], settings) for n in profile.features]
    target = None
    if profile.target is not None and profile.target in batch.columns:
        target = _column_drift(profile.columns[profile.target], batch[profile.target], settings)
    return verdict_of(features, target, len(batch), settings)


def verdict_of(
    features: list[ColumnDrift],
    target: ColumnDrift | None,
    rows: int,
    settings: DriftSettings,
    sketched: bool = False,
) -> DriftVerdict:
    """The batch's verdict from its columns' results (exact or sketched alike).

    The batch drifts when the share of drifted features reaches ``drift_share`` and, in
    calibrated mode, the features' p-values pass a test that accounts for how many were
    tested: with ``m`` features and ``k = ceil(drift_share x m)`` needed, the k-th smallest
    p-value must be at most ``k x false_alarm_rate / m``. Under no drift the expected number of
    p-values at most ``t`` is at most ``m t``, so (Markov) at least k of them are with
    probability at most ``m t / k``: a clean batch is called drift at most
    ``false_alarm_rate`` of the time, for any number of features and any dependence between
    them. With 1 to 3 features one flag used to reach the share: ``m`` chances per batch.
    """
    tested = [f for f in features if f.tested]
    share = float(np.mean([f.drifted for f in tested])) if tested else 0.0
    status = DriftStatus.NO_DRIFT if tested else DriftStatus.INSUFFICIENT_DATA
    batch_test = None
    passed = True
    if tested and not settings.fixed:
        needed = max(1, math.ceil(settings.drift_share * len(tested) - 1e-9))
        p_values = sorted(f.p_value(settings.feature_rule) or 1.0 for f in tested)
        # a p-value cannot go below what the draws resolve (the statistics' count over the
        # draws under "any"): a bar below that could never be passed, so it is raised to it
        # (the bound on false calls is then m x resolution / k, not false_alarm_rate)
        resolution = (len(settings.statistics) if settings.feature_rule == "any" else 1) / (
            settings.calibration_draws + 1
        )
        bar = max(needed * settings.false_alarm_rate / len(tested), resolution)
        passed = p_values[needed - 1] <= bar * (1 + 1e-9)
        batch_test = {"needed": float(needed), "p_value": p_values[needed - 1], "bar": bar}
    if tested and share >= settings.drift_share and passed:
        status = DriftStatus.DRIFT
    return DriftVerdict(
        status=status,
        rows=rows,
        drift_share=share,
        required_share=settings.drift_share,
        features=features,
        target=target,
        statistics=list(settings.statistics),
        feature_rule=settings.feature_rule,
        mode=FIXED if settings.fixed else CALIBRATED,
        false_alarm_rate=None if settings.fixed else settings.false_alarm_rate,
        floors={}
        if settings.fixed
        else {n: effect_floor(settings, n) for n in settings.statistics},
        thresholds={n: fixed_threshold(settings, n) for n in settings.statistics}
        if settings.fixed
        else {},
        min_rows=settings.min_rows,
        sketched=sketched,
        batch_test=batch_test,
    )


Measure = Callable[[str], Measurement]
"""A statistic's name -> its measurement on the column (from values or from a summary)."""


def _column_drift(column: ColumnProfile, series: pd.Series, settings: DriftSettings) -> ColumnDrift:
    if column.kind == NUMERIC:
        current = _sorted_finite(series)
        counts = column.histogram(current, assume_sorted=True)
        count = current.size
    else:  # categorical statistics take the counts per level (see driftloop.drift.statistics)
        current = column.level_counts(category_counts(series))
        counts = fold_unseen(column, current)
        count = int(counts.sum())
    return judge_column(
        column,
        count,
        len(series),
        counts,
        lambda name: STATISTICS[name].compute(column, current),
        settings,
        level_counts=current if column.kind != NUMERIC else None,
        values=current if column.kind == NUMERIC else None,
    )


def fold_unseen(column: ColumnProfile, level_counts: np.ndarray) -> np.ndarray:
    """Counts per profile bin from :meth:`ColumnProfile.level_counts`: the unseen labels in
    the profile's one unseen bin (what reports plot)."""
    levels = len(column.levels)
    return np.append(level_counts[:levels], level_counts[levels:].sum())


def judge_column(
    column: ColumnProfile,
    count: int,
    rows: int,
    counts: np.ndarray,
    measure: Measure,
    settings: DriftSettings,
    bounds: dict[str, float] | None = None,
    level_counts: np.ndarray | None = None,
    values: np.ndarray | None = None,
) -> ColumnDrift:
    """Test one column: ``count`` non-missing values of ``rows``, ``counts`` per profile bin,
    ``measure`` giving each statistic. ``bounds`` (sketched batches) are the statistics' error
    bounds: a statistic flags only when its value minus its bound still crosses its bar.
    ``level_counts`` (categorical columns): counts per reference level, then per unseen label,
    for the statistics tested by permutation. ``values`` (numeric columns, exact batches):
    the sorted values, for the permutation test of the statistics of values where it applies
    (``driftloop.drift.permutation``)."""
    missing_share = 1.0 - count / rows
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
    names = [n for n in settings.statistics if column.kind in STATISTICS[n].column_kinds]
    result.tested = count >= settings.min_rows
    level = settings.level(len(names))
    permute = values is not None and permutation.applies(
        column.exact, count, column.values, column.std
    )
    pooled: np.ndarray | None = None
    for name in names:
        measurement = measure(name)
        bound = None if bounds is None else bounds.get(name, 0.0)
        if settings.fixed:
            threshold = fixed_threshold(settings, name) + (bound or 0.0)
            flag = measurement.value >= threshold
            test = StatisticTest(measurement, threshold, 0.0, flag, FIXED, sketch_bound=bound)
        elif permute and name in VALUE_NULLS:
            if pooled is None:  # merged once, shared by the statistics of values
                pooled = permutation.pooled_sorted(column.values, values)  # type: ignore[arg-type]
            test = permutation.statistic_test(
                column,
                name,
                measurement,
                pooled,
                count,
                level,
                effect_floor(settings, name),
                settings.calibration_draws,
            )
        elif level_counts is not None and STATISTICS[name].permutation is not None:
            test = categorical.statistic_test(
                column,
                name,
                measurement,
                level_counts,
                level,
                effect_floor(settings, name),
                settings.calibration_draws,
            )
            test = replace(test, sketch_bound=bound)
        else:
            test = _calibrated_test(
                column, name, measurement, count, level, effect_floor(settings, name), bound
            )
        if not result.tested:  # too few values: shown, never flagged
            test = replace(test, flag=False)
        result.tests[name] = test
    decide = any if settings.feature_rule == "any" else all
    result.drifted = result.tested and bool(result.tests) and decide(result.flags.values())
    return result


def _calibrated_test(
    column: ColumnProfile,
    name: str,
    measurement: Measurement,
    n: int,
    level: float,
    floor: float,
    bound: float | None = None,
) -> StatisticTest:
    """The calibrated test; with a sketch's ``bound``, on the lowest value the exact statistic
    can have (value - bound), so a flag is one the exact statistic would raise too, and the
    false-alarm rate stays at most ``level``. The threshold shown is the bar for the value."""
    null = column.nulls[name]
    noise = scale(n, column.count)
    slack = bound or 0.0
    lowest = max(measurement.value - slack, 0.0)
    threshold = null.critical(level, n) * noise + slack
    p_value = null.p_value(lowest / noise, n) if math.isfinite(noise) else 1.0
    flag = p_value <= level and lowest >= floor
    decided_by = "floor" if floor + slack > threshold else "threshold"
    return StatisticTest(
        measurement, threshold, floor + slack, flag, decided_by, p_value, level, bound
    )


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
