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
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.drift import categorical, multivariate, permutation, segments
from driftloop.drift.calibration import VALUE_NULLS, scale
from driftloop.drift.column import NUMERIC, ColumnProfile
from driftloop.drift.labels import category_counts
from driftloop.drift.multivariate import MultivariateTest
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.segments import SegmentTest
from driftloop.drift.statistics import STATISTICS, Measurement, effect_floor, fixed_threshold
from driftloop.drift.threads import one_blas_thread
from driftloop.drift.verdict import (
    CALIBRATED,
    FIXED,
    REPORT_FORMAT,
    ColumnDrift,
    DriftVerdict,
    StatisticTest,
)
from driftloop.vocabulary import DriftStatus

__all__ = [
    "CALIBRATED",
    "FIXED",
    "REPORT_FORMAT",
    "ColumnDrift",
    "DriftError",
    "DriftVerdict",
    "StatisticTest",
    "check_drift",
    "multivariate_test",
    "verdict_of",
]

MULTIVARIATE_ROWS_MAX = 100_000
"""Rows of a batch the multivariate test reads (a seeded random sample beyond): ranks of a
random sample keep the test's level, and 100,000 rows detect far smaller changes than matter."""


class DriftError(ValueError):
    """A batch the engine cannot test; the message says why."""


@one_blas_thread
def check_drift(
    profile: ReferenceProfile,
    batch: pd.DataFrame,
    settings: DriftSettings,
    importances: Mapping[str, float] | None = None,
    tail: bool = False,
) -> DriftVerdict:
    """Test ``batch`` against ``profile``: every profiled feature, and the target if present.

    In calibrated mode a profile without null draws for the configured statistics is
    calibrated here, in memory (the monitor stores it, so that happens once). ``tail`` adds
    the multivariate tail test (served traffic: ``driftloop.drift.traffic``).
    """
    if batch.empty:
        raise DriftError("the batch is empty: there is nothing to test for drift")
    missing = [name for name in profile.features if name not in batch.columns]
    if missing:
        raise DriftError(f"the batch lacks profiled column(s) {missing}")
    if not settings.fixed:
        profile.calibrate(settings.statistics, settings.draws)
    features = [_column_drift(profile.columns[n], batch[n], settings) for n in profile.features]
    target = None
    if profile.target is not None and profile.target in batch.columns:
        target = _column_drift(profile.columns[profile.target], batch[profile.target], settings)
    together = multivariate_test(profile, batch, settings, tail)
    segment_tests = []
    if profile.segments and not settings.fixed:
        segment_tests = segments.assess(
            profile.segments, batch, settings.segment_fdr, settings.segment_min_rows
        )
    return verdict_of(
        features,
        target,
        len(batch),
        settings,
        multivariate=together,
        importances=importances,
        segment_tests=segment_tests,
    )


@one_blas_thread
def multivariate_test(
    profile: ReferenceProfile, batch: pd.DataFrame, settings: DriftSettings, tail: bool = False
) -> MultivariateTest | None:
    """The features tested together, when the settings ask for it and the profile holds their
    structure (profiles built before format 3, or from under 100 rows, do not); with ``tail``
    the tail test too (:func:`driftloop.drift.multivariate.assess`)."""
    if not settings.multivariate or settings.fixed or profile.multivariate is None:
        return None
    rows = batch[profile.features]
    if len(rows) < settings.min_rows:
        return None
    if len(rows) > MULTIVARIATE_ROWS_MAX:
        rng = np.random.default_rng(len(rows))
        rows = rows.iloc[np.sort(rng.choice(len(rows), MULTIVARIATE_ROWS_MAX, replace=False))]
    return multivariate.assess(
        profile.multivariate, rows, settings.multivariate_level, settings.multivariate_floor, tail
    )


def verdict_of(
    features: list[ColumnDrift],
    target: ColumnDrift | None,
    rows: int,
    settings: DriftSettings,
    sketched: bool = False,
    multivariate: MultivariateTest | None = None,
    importances: Mapping[str, float] | None = None,
    segment_tests: list[SegmentTest] | None = None,
) -> DriftVerdict:
    """The batch's verdict from its columns' results (exact or sketched alike).

    The batch drifts when the share of drifted features reaches ``drift_share`` and, in
    calibrated mode, the features' p-values pass a test that accounts for how many were
    tested: with ``m`` features and ``k = ceil(drift_share x m)`` needed, the k-th smallest
    p-value must be at most ``k x false_alarm_rate / m``. Under no drift the expected number of
    p-values at most ``t`` is at most ``m t``, so (Markov) at least k of them are with
    probability at most ``m t / k``: a clean batch is called drift at most
    ``false_alarm_rate`` of the time, for any number of features and any dependence between
    them. With 1 to 3 features one flag used to reach the share: ``m`` chances per batch. The
    null draws resolve every such bar (``DriftSettings.draws``).

    With ``drift.multivariate_retrain`` the multivariate test may call drift on its own; the
    two then share ``false_alarm_rate`` (``DriftSettings.verdict_rate``), and so do the
    ``segment_tests`` with ``drift.segment_retrain``, so a clean batch is still called drift
    at most that often. With ``drift.weighting: importance`` and the
    version's ``importances``, features count by their weight (``_weighted_share``).
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
        # draws under "any"); DriftSettings.draws holds enough draws for the smallest bar, so
        # this binds at most within the float rounding of DriftSettings.verdict_draws
        resolution = _resolution(settings)
        bar = max(needed * settings.verdict_rate / len(tested), resolution)
        passed = p_values[needed - 1] <= bar * (1 + 1e-9)
        batch_test = {"needed": float(needed), "p_value": p_values[needed - 1], "bar": bar}
    weights = _weights(tested, importances) if settings.weighting == "importance" else None
    weighted_share = None
    if weights is not None:  # the bar is inside the weighted share: drifted and p <= bar
        weighted_share, passed = _weighted_share(tested, weights, settings), True
        if batch_test is not None:
            batch_test = {"bar": _weighted_bar(settings), "weighted_share": weighted_share}
    reached = weighted_share if weighted_share is not None else share
    if tested and reached >= settings.drift_share - 1e-12 and passed:
        status = DriftStatus.DRIFT
    calls_drift = multivariate is not None and settings.multivariate_retrain
    if calls_drift and multivariate.flag:
        status = DriftStatus.DRIFT
    segment_tests = segment_tests or []
    segments_call = settings.segment_retrain and segments.calls_drift(
        segment_tests, settings.segment_level
    )
    if segments_call:
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
        multivariate=multivariate,
        multivariate_calls_drift=calls_drift,
        segments=segment_tests,
        segments_call_drift=segments_call,
        weighting="importance" if weights is not None else "count",
        importance_share=(
            None if weights is None else sum(weights[f.name] for f in tested if f.drifted)
        ),
    )


def _resolution(settings: DriftSettings) -> float:
    """The smallest p-value the stored draws resolve (the statistics' count under ``any``)."""
    statistics = len(settings.statistics) if settings.feature_rule == "any" else 1
    return statistics / (settings.draws + 1)


def _weights(
    tested: list[ColumnDrift], importances: Mapping[str, float] | None
) -> dict[str, float] | None:
    """Each tested feature's share of the importance among the tested features; None (count
    the features) without importances or when none of the tested features carries any."""
    if not importances:
        return None
    raw = {f.name: max(float(importances.get(f.name, 0.0)), 0.0) for f in tested}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()} if total > 0 else None


def _weighted_bar(settings: DriftSettings) -> float:
    return max(settings.drift_share * settings.verdict_rate, _resolution(settings))


def _weighted_share(
    tested: list[ColumnDrift], weights: dict[str, float], settings: DriftSettings
) -> float:
    """The importance share of the drifted features whose p-value is at most the bar.

    Under no drift each p-value is at most ``t`` with probability at most ``t``, so the weighted
    share of those at most ``t`` has expectation at most ``t`` (the weights sum to 1) and
    (Markov) reaches ``drift_share`` with probability at most ``t / drift_share``: with
    ``t = drift_share x rate`` a clean batch is called drift at most ``rate`` of the time, for
    any weights, number of features and dependence. In fixed mode (no p-values) the drifted
    features' weight decides.
    """
    bar = _weighted_bar(settings) * (1 + 1e-9)
    rule = settings.feature_rule
    return sum(
        weights[f.name]
        for f in tested
        if f.drifted and (settings.fixed or (f.p_value(rule) or 1.0) <= bar)
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
    permute = values is not None and permutation.applies(column, count)
    splits: permutation.Splits | None = None
    for name in names:
        measurement = measure(name)
        bound = None if bounds is None else bounds.get(name, 0.0)
        if settings.fixed:
            threshold = fixed_threshold(settings, name) + (bound or 0.0)
            flag = measurement.value >= threshold
            test = StatisticTest(measurement, threshold, 0.0, flag, FIXED, sketch_bound=bound)
        elif permute and name in VALUE_NULLS:
            if splits is None:  # one merge and one set of splits for the statistics of values
                splits = permutation.Splits(
                    [other for other in names if other in VALUE_NULLS],
                    permutation.pooled_sorted(column.values, values),  # type: ignore[arg-type]
                    count,
                    column.count,
                    settings.calibration_draws,
                    settings.draws,
                )
            test = splits.test(column, name, measurement, level, effect_floor(settings, name))
        elif level_counts is not None and STATISTICS[name].permutation is not None:
            test = categorical.statistic_test(
                column,
                name,
                measurement,
                level_counts,
                level,
                effect_floor(settings, name),
                settings.calibration_draws,
                settings.draws,
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
