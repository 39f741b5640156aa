"""The loop's state as numbers for dashboards: the latest drift check (share, verdict, every
feature's statistics), retrain outcomes, the running A/B test and Production's online metric.

They live in driftloop's database; :func:`loop_gauges` reads them at scrape time, so every
server replica exports the same values whatever worker answers. The server's ``/metrics``
exposes them beside its own request metrics (``serving.metrics``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from driftloop.storage import ABEvaluation, ABTest, DriftCheck, HealthCheck, RetrainRun
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
            *_drift(connection),
            _retrain(connection),
            *_ab(connection, model_name),
            *_health(connection, model_name),
        ]


def _drift(connection: sa.Connection) -> list[Gauge]:
    counts = dict(
        connection.execute(
            sa.select(DriftCheck.status, sa.func.count()).group_by(DriftCheck.status)
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
        .where(DriftCheck.status != DriftStatus.FAILED)
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
    if latest is not None:
        share.samples.append(((), float(latest.drift_share or 0.0)))
        detected.samples.append(((), 1.0 if latest.status == DriftStatus.DRIFT else 0.0))
        values, thresholds = _feature_scores(latest.json_path)
        scores.samples.extend(values)
        bars.samples.extend(thresholds)
    return [checks, share, detected, scores, bars]


Samples = tuple[tuple[tuple[str, ...], float], ...]


def _feature_scores(json_path: str | None) -> tuple[Samples, Samples]:
    if not json_path or not Path(json_path).exists():
        return (), ()
    path = Path(json_path)
    return _scores_in_report(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _scores_in_report(path: str, _mtime_ns: int) -> tuple[Samples, Samples]:
    """Each statistic's value and bar. A report is written once (atomically) and read on every
    scrape: parse it once per version of the file (the modification time is part of the key).
    Reports of every format are read (``read_report``)."""
    from driftloop.drift.report import read_report

    report = read_report(Path(path))
    values, bars = [], []
    for feature in report.get("features", []):
        for statistic, measured in (feature.get("statistics") or {}).items():
            labels = (feature["name"], statistic)
            if measured.get("value") is not None:
                values.append((labels, _number(measured["value"])))
            bar = max(_number(measured.get("threshold")), _number(measured.get("floor")))
            if bar == bar:  # not NaN: the report said what the bar was
                bars.append((labels, bar))
    return tuple(values), tuple(bars)


def _number(value: object) -> float:
    """A JSON number, or the strings "inf"/"-inf"/"nan" the reports write for those."""
    return float(value) if value is not None else float("nan")  # float("inf") parses "inf"


def _retrain(connection: sa.Connection) -> Gauge:
    rows = connection.execute(
        sa.select(RetrainRun.decision, sa.func.count()).group_by(RetrainRun.decision)
    ).all()
    return Gauge(
        "driftloop_retrain_runs",
        "Retrain runs and re-gates stored, by decision (staging, rejected, insufficient_evidence, skipped, failed, production)",
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
    return [metric, samples, p_value, running]


def _health(connection: sa.Connection, model_name: str) -> list[Gauge]:
    online = Gauge(
        "driftloop_production_online_metric",
        "Production's metric over its latest records with feedback",
        ("version", "metric"),
    )
    baseline = Gauge(
        "driftloop_production_baseline_metric",
        "Production's metric over its first records with feedback",
        ("version", "metric"),
    )
    decayed = Gauge("driftloop_production_decayed", "1 when Production's online metric decayed")
    row = connection.execute(
        sa.select(
            HealthCheck.model_version,
            HealthCheck.metric,
            HealthCheck.current,
            HealthCheck.baseline,
            HealthCheck.decayed,
        )
        .where(HealthCheck.model_name == model_name)
        .order_by(HealthCheck.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        labels = (row.model_version, row.metric)
        if row.current is not None:
            online.samples.append((labels, float(row.current)))
        if row.baseline is not None:
            baseline.samples.append((labels, float(row.baseline)))
        decayed.samples.append(((), 1.0 if row.decayed else 0.0))
    return [online, baseline, decayed]
