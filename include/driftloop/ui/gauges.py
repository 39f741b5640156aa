"""The loop's state as numbers for dashboards: the latest drift check (share, verdict, every
feature's statistics with their bars and p-values, a categorical's unseen levels, the batch
test over features), retrain outcomes, the running A/B test and Production's performance
(realized per batch and per day against its out-of-sample estimate, estimated before labels,
prediction drift), and the A/B test's sample-ratio checks.

They live in driftloop's database; :func:`loop_gauges` reads them at scrape time, so every
server replica exports the same values whatever worker answers. The server's ``/metrics``
exposes them beside its own request metrics (``serving.metrics``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from driftloop.ab.srm import LABELS
from driftloop.storage import ABEvaluation, ABTest, DriftCheck, PerformanceCheck, RetrainRun
from driftloop.vocabulary import ABTestStatus, DriftStatus, Role


@dataclass(frozen=True)
class Gauge:
    """One exported metric family: name, help, label names and (labels, value) samples."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


def loop_gauges(engine: sa.Engine, model_name: str) -> list[Gauge]:
    """Every loop metric, read from the database now."""
    with engine.connect() as connection:
        return [
            *_drift(connection, model_name),
            _retrain(connection, model_name),
            *_ab(connection, model_name),
            *_performance(connection, model_name),
        ]


def _drift(connection: sa.Connection, model_name: str) -> list[Gauge]:
    counts = dict(
        connection.execute(
            sa.select(DriftCheck.status, sa.func.count())
            .where(DriftCheck.model_name == model_name)
            .group_by(DriftCheck.status)
        ).all()
    )
    checks = Gauge(
        "driftloop_drift_checks",
        "Drift checks stored, by verdict",
        ("status",),
        [((s,), float(counts.get(s, 0))) for s in DriftStatus],
    )
    latest = connection.execute(
        sa.select(DriftCheck.status, DriftCheck.drift_share, DriftCheck.json_path)
        .where(DriftCheck.model_name == model_name, DriftCheck.status != DriftStatus.FAILED)
        .order_by(DriftCheck.id.desc())
        .limit(1)
    ).first()
    share = Gauge("driftloop_drift_share", "Share of drifted features in the latest checked batch")
    detected = Gauge("driftloop_drift_detected", "1 when the latest checked batch drifted")
    scores = Gauge(
        "driftloop_drift_feature_score",
        "Each feature's drift statistic in the latest checked batch",
        ("feature", "statistic"),
    )
    bars = Gauge(
        "driftloop_drift_feature_threshold",
        "The bar each feature's statistic had to clear in the latest checked batch: the threshold "
        "calibrated to its size or the effect floor, whichever is higher (or the fixed threshold)",
        ("feature", "statistic"),
    )
    p_values = Gauge(
        "driftloop_drift_feature_p_value",
        "Each feature's statistic's p-value under no drift in the latest checked batch "
        "(calibrated mode; a categorical's by permutation against the batch)",
        ("feature", "statistic"),
    )
    unseen = Gauge(
        "driftloop_drift_feature_unseen_share",
        "Share of a categorical feature's values in the latest checked batch on levels the "
        "reference never saw",
        ("feature",),
    )
    new_level = Gauge(
        "driftloop_drift_feature_new_level_p_value",
        "p-value of the largest level the reference never saw, in the latest checked batch "
        "(categorical features)",
        ("feature",),
    )
    batch = Gauge(
        "driftloop_drift_batch_test",
        "The latest checked batch's test over features: the k-th smallest feature p-value "
        "(part p_value), which must be at most k x false_alarm_rate / m (part bar), and k "
        "(part needed)",
        ("part",),
    )
    together = Gauge(
        "driftloop_drift_multivariate",
        "The features tested together in the latest checked batch (PCA reconstruction error): "
        "its relative increase over held-out reference rows, p-value, level and flag",
        ("quantity",),
    )
    if latest is not None:
        share.samples.append(((), float(latest.drift_share or 0.0)))
        detected.samples.append(((), 1.0 if latest.status == DriftStatus.DRIFT else 0.0))
        numbers = _report_numbers(latest.json_path)
        scores.samples.extend(numbers.values)
        bars.samples.extend(numbers.bars)
        p_values.samples.extend(numbers.p_values)
        unseen.samples.extend(numbers.unseen)
        new_level.samples.extend(numbers.new_level)
        batch.samples.extend(numbers.batch)
        together.samples.extend(numbers.multivariate)
    return [checks, share, detected, scores, bars, p_values, unseen, new_level, batch, together]


Samples = tuple[tuple[tuple[str, ...], float], ...]


@dataclass(frozen=True)
class ReportNumbers:
    """What the gauges show of one stored drift report (empty when it has no JSON record)."""

    values: Samples = ()
    bars: Samples = ()
    p_values: Samples = ()
    unseen: Samples = ()
    new_level: Samples = ()
    batch: Samples = ()
    multivariate: Samples = ()


def _report_numbers(json_path: str | None) -> ReportNumbers:
    if not json_path or not Path(json_path).exists():
        return ReportNumbers()
    path = Path(json_path)
    return _numbers_in_report(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _numbers_in_report(path: str, _mtime_ns: int) -> ReportNumbers:
    """Each statistic's value, bar and p-value, a categorical's unseen levels, the batch test.
    A report is written once (atomically) and read on every scrape: parse it once per version
    of the file (the modification time is part of the key). Reports of every format are read
    (``read_report``); what an older format lacks is left out."""
    from driftloop.reports.drift import read_report

    report = read_report(Path(path))
    values, bars, p_values, unseen, new_level = [], [], [], [], []
    for feature in report.get("features", []):
        for statistic, measured in (feature.get("statistics") or {}).items():
            labels = (feature["name"], statistic)
            if measured.get("value") is not None:
                values.append((labels, _number(measured["value"])))
            bar = max(_number(measured.get("threshold")), _number(measured.get("floor")))
            if bar == bar:  # not NaN: the report said what the bar was
                bars.append((labels, bar))
            if measured.get("p_value") is not None:
                p_values.append((labels, _number(measured["p_value"])))
            if "unseen_share" in measured:
                unseen.append(((feature["name"],), _number(measured["unseen_share"])))
                new_level.append(((feature["name"],), _number(measured["new_level_p_value"])))
    test = report.get("batch_test") or {}
    parts = [part for part in ("p_value", "bar", "needed", "weighted_share") if part in test]
    batch = [((part,), _number(test[part])) for part in parts]
    together = report.get("multivariate") or {}
    multivariate = tuple(
        ((quantity,), _number(together[quantity]))
        for quantity in ("increase", "p_value", "level", "flag")
        if quantity in together
    )
    return ReportNumbers(
        tuple(values),
        tuple(bars),
        tuple(p_values),
        tuple(dict(unseen).items()),  # one per feature, whichever statistic carried it
        tuple(dict(new_level).items()),
        tuple(batch),
        multivariate,
    )


def _number(value: object) -> float:
    """A JSON number, or the strings "inf"/"-inf"/"nan" the reports write for those."""
    return float(value) if value is not None else float("nan")  # float("inf") parses "inf"


def _retrain(connection: sa.Connection, model_name: str) -> Gauge:
    rows = connection.execute(
        sa.select(RetrainRun.decision, sa.func.count())
        .where(RetrainRun.model_name == model_name)
        .group_by(RetrainRun.decision)
    ).all()
    return Gauge(
        "driftloop_retrain_runs",
        "Retrain runs and re-gates stored, by decision "
        "(staging, rejected, insufficient_evidence, skipped, failed, production)",
        ("decision",),
        [((decision,), float(count)) for decision, count in rows],
    )


def _ab(connection: sa.Connection, model_name: str) -> list[Gauge]:
    metric = Gauge(
        "driftloop_ab_metric", "The A/B decision metric per variant", ("variant", "metric")
    )
    samples = Gauge("driftloop_ab_samples", "Records with feedback per variant", ("variant",))
    p_value = Gauge("driftloop_ab_p_value", "The latest always-valid p-value of the A/B test")
    running = Gauge("driftloop_ab_running", "1 while an A/B test is running")
    row = connection.execute(
        sa.select(
            ABEvaluation.metric,
            ABEvaluation.production_value,
            ABEvaluation.staging_value,
            ABEvaluation.production_samples,
            ABEvaluation.staging_samples,
            ABEvaluation.p_value,
            ABEvaluation.statistics,
            ABTest.status,
        )
        .join(ABTest, ABTest.id == ABEvaluation.test_id)
        .where(ABTest.model_name == model_name)
        .order_by(ABEvaluation.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        for variant, value, count in (
            (Role.PRODUCTION, row.production_value, row.production_samples),
            (Role.STAGING, row.staging_value, row.staging_samples),
        ):
            if value is not None:
                metric.samples.append(((variant, row.metric), float(value)))
            samples.samples.append(((variant,), float(count)))
        if row.p_value is not None:
            p_value.samples.append(((), float(row.p_value)))
        running.samples.append(((), 1.0 if row.status == ABTestStatus.RUNNING else 0.0))
    return [
        metric,
        samples,
        p_value,
        running,
        *_sample_ratio((row.statistics or {}) if row else {}),
    ]


def _sample_ratio(statistics: dict) -> list[Gauge]:
    """The latest look's sample-ratio checks (``ab.srm``), one ``check`` label each: requests,
    feedback. Looks stored before the check have none."""
    mismatch = Gauge(
        "driftloop_ab_sample_ratio_mismatch",
        "1 when the latest A/B look's counts do not match the traffic split (no decision then)",
        ("check",),
    )
    p_value = Gauge(
        "driftloop_ab_sample_ratio_p_value",
        "Always-valid p-value of the sample-ratio check of the latest A/B look",
        ("check",),
    )
    share = Gauge(
        "driftloop_ab_sample_ratio_staging_share",
        "Staging's share of the counts checked, observed and expected from the split",
        ("check", "share"),
    )
    for check in statistics.get("srm") or []:
        label = (LABELS.get(check["what"], check["what"]),)
        mismatch.samples.append((label, 1.0 if check["mismatch"] else 0.0))
        p_value.samples.append((label, float(check["p_value"])))
        total = check["production"] + check["staging"]
        if total:
            share.samples.append(((*label, "observed"), check["staging"] / total))
        share.samples.append(((*label, "expected"), float(check["expected_staging_share"])))
    return [mismatch, p_value, share]


def _performance(connection: sa.Connection, model_name: str) -> list[Gauge]:
    """The latest batch and day checks: realized metric with its interval and reference, the
    decay verdict, the estimate before labels, prediction drift and the model's inference time."""
    realized = Gauge(
        "driftloop_performance_realized",
        "Production's realized metric on its latest labelled batch or day",
        ("scope", "version", "metric"),
    )
    low = Gauge(
        "driftloop_performance_realized_low",
        "Lower end of the realized metric's interval (monitoring.confidence)",
        ("scope", "version", "metric"),
    )
    high = Gauge(
        "driftloop_performance_realized_high",
        "Upper end of the realized metric's interval (monitoring.confidence)",
        ("scope", "version", "metric"),
    )
    reference = Gauge(
        "driftloop_performance_reference",
        "The version's out-of-sample metric that realized performance is judged against",
        ("version", "metric"),
    )
    decayed = Gauge(
        "driftloop_performance_decayed",
        "1 when the latest judged batch or day decayed",
        ("scope",),
    )
    estimated = Gauge(
        "driftloop_performance_estimated",
        "Production's estimated accuracy on the latest batch, before labels (CBPE)",
        ("version", "bound"),
    )
    estimated_drop = Gauge(
        "driftloop_performance_estimated_drop", "1 when the latest batch's estimate dropped"
    )
    prediction_drift = Gauge(
        "driftloop_prediction_drift", "1 when Production's predictions on the latest batch drifted"
    )
    inference = Gauge(
        "driftloop_model_inference_seconds",
        "Time Production took to predict the latest checked batch (apart from the drift check)",
    )
    columns = (
        PerformanceCheck.scope,
        PerformanceCheck.model_version,
        PerformanceCheck.metric,
        PerformanceCheck.value,
        PerformanceCheck.low,
        PerformanceCheck.high,
        PerformanceCheck.reference_value,
        PerformanceCheck.decayed,
        PerformanceCheck.p_value,
    )
    for scope in ("batch", "day"):
        row = connection.execute(
            sa.select(*columns)
            .where(
                PerformanceCheck.model_name == model_name,
                PerformanceCheck.scope == scope,
                PerformanceCheck.value.is_not(None),
            )
            .order_by(PerformanceCheck.id.desc())
            .limit(1)
        ).first()
        if row is None:
            continue
        labels = (scope, row.model_version, row.metric)
        realized.samples.append((labels, float(row.value)))
        for gauge, value in ((low, row.low), (high, row.high)):
            if value is not None:
                gauge.samples.append((labels, float(value)))
        if row.reference_value is not None:
            sample = ((row.model_version, row.metric), float(row.reference_value))
            if sample not in reference.samples:
                reference.samples.append(sample)
        if row.p_value is not None:  # judged: it had a reference and enough rows
            decayed.samples.append(((scope,), 1.0 if row.decayed else 0.0))
    latest = connection.execute(
        sa.select(
            PerformanceCheck.model_version,
            PerformanceCheck.estimated_value,
            PerformanceCheck.estimated_low,
            PerformanceCheck.estimated_high,
            PerformanceCheck.estimated_drop,
            PerformanceCheck.prediction_drift,
            PerformanceCheck.details,
        )
        .where(
            PerformanceCheck.model_name == model_name,
            PerformanceCheck.scope == "batch",
            PerformanceCheck.source == "batch",
        )
        .order_by(PerformanceCheck.id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        if latest.estimated_value is not None:
            for bound, value in (
                ("value", latest.estimated_value),
                ("low", latest.estimated_low),
                ("high", latest.estimated_high),
            ):
                estimated.samples.append(((latest.model_version, bound), float(value)))
            estimated_drop.samples.append(((), 1.0 if latest.estimated_drop else 0.0))
        if latest.prediction_drift is not None:
            prediction_drift.samples.append(((), 1.0 if latest.prediction_drift else 0.0))
        seconds = (latest.details or {}).get("inference_seconds")
        if seconds is not None:
            inference.samples.append(((), float(seconds)))
    return [
        realized,
        low,
        high,
        reference,
        decayed,
        estimated,
        estimated_drop,
        prediction_drift,
        inference,
    ]
