"""One look at the running A/B test: find it, compute its numbers, decide, act, store.

A test is the pair (Production version, Staging version), started when Staging first answered
a request. Each look (``ab_evaluate``, or ``driftloop ab evaluate``) stores an evaluation row,
a JSON record and an HTML report, then decides:

- **reject** at once when a guardrail breaks (Staging's failed-request share or p99 latency);
- **promote** or **reject** when the sequential test crosses its boundary, once both variants
  have ``ab.min_samples`` records with feedback;
- **inconclusive** past ``ab.max_days``: Production stays, Staging is archived;
- no promotion or rejection by the sequential test while the counts per variant do not match
  the traffic split (``driftloop.ab.srm``: a sample-ratio mismatch biases the comparison); the
  first look that finds one sends a ``sample_ratio_mismatch`` alert;
- otherwise **continue** collecting.

With ``ab.approval: required`` a decision in ``ab.approval_actions`` waits for a person
(``driftloop.stages.approval``) instead of being acted on; guardrail rejections never wait.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.ab.rows import load_rows
from driftloop.ab.sequential import SequentialResult, two_sample
from driftloop.ab.srm import SRMCheck, hold, mismatched_before, mismatches, split_checks
from driftloop.ab.statistics import VariantStats, clustered_outcomes, summarize, timeline
from driftloop.config import Settings
from driftloop.reports.rendering import atomic_write
from driftloop.stages import alerts, approval, promotion
from driftloop.stages.ab_paired import compute_paired
from driftloop.stages.ab_tests import ENDED, Evaluation, close_test, judge
from driftloop.storage import BATCH, FORCED, ABEvaluation, ABTest, Prediction, session_scope
from driftloop.task import metric as metric_named
from driftloop.task import task_kind, task_of
from driftloop.vocabulary import ABDecision, ABTestStatus, Action, Role

log = logging.getLogger(__name__)
ACTOR = "ab_evaluate"


def running_test(settings: Settings, engine: sa.Engine, create: bool = True) -> ABTest | None:
    """The test of today's (Production, Staging) pair; tests of other pairs are closed."""
    production, staging = promotion.roles(settings)
    name = settings.model.name
    with session_scope(engine) as session:
        running = session.scalars(
            sa.select(ABTest).where(
                ABTest.model_name == name, ABTest.status == ABTestStatus.RUNNING
            )
        ).all()
        current = None
        for test in running:
            if (test.production_version, test.staging_version) == (production, staging):
                current = test
            elif create:
                test.status, test.ended_at = ABTestStatus.SUPERSEDED, datetime.now(UTC)
                test.reason = f"the pair changed to Production {production}, Staging {staging}"
        if current is None and create and production and staging:
            # paired: Staging's shadow answers are the test; unpaired: its served ones
            paired = settings.ab.design == "paired"
            started = session.scalar(
                sa.select(sa.func.min(Prediction.created_at)).where(
                    Prediction.model_name == name,
                    Prediction.variant == Role.STAGING,
                    Prediction.model_version == staging,
                    sa.true() if paired else Prediction.shadow.is_(False),
                )
            )
            if started is None:
                return None  # Staging has not answered a request yet: no test has started
            current = ABTest(
                model_name=name,
                production_version=production,
                staging_version=staging,
                status=ABTestStatus.RUNNING,
                started_at=started,
            )
            session.add(current)
            session.flush()
        if current is not None:
            session.expunge(current)
        return current


def evaluate(
    settings: Settings, engine: sa.Engine, act: bool = True, now: datetime | None = None
) -> Evaluation | None:
    """Look at the running test (None when there is none), store the look, and act on it."""
    test = running_test(settings, engine)
    if test is None:
        return None
    now = now or datetime.now(UTC)
    evaluation = compute(settings, engine, test, now)
    first_mismatch = bool(mismatches(evaluation.srm)) and not mismatched_before(engine, test.id)
    _store(settings, engine, evaluation)
    if first_mismatch:
        alerts.send(
            settings,
            "sample_ratio_mismatch",
            f"A/B test {test.id}: the counts per variant do not match the traffic split; "
            f"no promotion while it lasts: "
            + "; ".join(c.sentence() for c in mismatches(evaluation.srm)),
            {"test_id": test.id, "srm": [c.to_dict() for c in evaluation.srm]},
        )
    if act and evaluation.decision != ABDecision.CONTINUE:
        if approval.waits(settings, evaluation.decision, evaluation.reason):
            waiting = approval.request(engine, evaluation)  # None: a person declined it already
            evaluation.approval = waiting.to_dict() if waiting else None
        else:
            _act(settings, engine, evaluation)
            approval.supersede(engine, evaluation.test_id, ACTOR, evaluation.reason)
    return evaluation


def compute(settings: Settings, engine: sa.Engine, test: ABTest, now: datetime) -> Evaluation:
    """The numbers and the decision, without acting or storing anything."""
    task = settings.data.task
    metric = task_of(settings).decision_metric(settings.ab.metric).name
    if settings.ab.design == "paired":
        return compute_paired(settings, engine, test, now, metric)
    rows = load_rows(engine, test)
    per_variant: dict[str, VariantStats] = {}
    labelled: dict[str, pd.DataFrame] = {}
    for variant, version in (
        (Role.PRODUCTION, test.production_version),
        (Role.STAGING, test.staging_version),
    ):
        mine = rows[
            (rows["variant"] == variant)
            & (rows["model_version"] == version)
            # X-Variant: chosen by a person; batch scoring: not randomized either
            & ~rows["assignment"].isin([FORCED, BATCH])
        ]
        labelled[variant] = mine[
            (mine["status"] == 200) & mine["has_truth"] & _usable_truth(mine["truth"], task)
        ]
        per_variant[variant] = summarize(variant, version, mine, labelled[variant], task)
    production, staging = per_variant[Role.PRODUCTION], per_variant[Role.STAGING]
    randomized = rows[rows["model_version"].isin([test.production_version, test.staging_version])]
    srm = split_checks(settings, engine, randomized[randomized["variant"].isin(list(Role))])
    sequential, decision, reason = decide(
        settings,
        test,
        now,
        metric,
        (production, *clustered_outcomes(labelled[Role.PRODUCTION], metric)),
        (staging, *clustered_outcomes(labelled[Role.STAGING], metric)),
        srm,
    )
    return Evaluation.look(
        engine,
        test,
        now,
        metric,
        (decision, reason),
        (production, staging),
        sequential,
        timeline(labelled, metric, settings.ab.min_effect, settings.ab.alpha),
        srm,
    )


Arm = tuple[VariantStats, np.ndarray] | tuple[VariantStats, np.ndarray, np.ndarray]


def decide(
    settings: Settings,
    test: ABTest,
    now: datetime,
    metric: str,
    production: Arm,
    staging: Arm,
    srm: list[SRMCheck] | None = None,
) -> tuple[SequentialResult | None, ABDecision, str]:
    """The sequential test and the decision from each variant's numbers and per-record
    outcomes (with each record's cluster: client or request; without, records are their own
    clusters): all that ``compute`` decides on, apart so that the A/A check runs this code."""
    ab = settings.ab
    production_stats, production_outcomes = production[0], production[1]
    staging_stats, staging_outcomes = staging[0], staging[1]
    clusters = (
        production[2] if len(production) > 2 else None,  # type: ignore[misc]
        staging[2] if len(staging) > 2 else None,  # type: ignore[misc]
    )
    sequential = None
    enough = min(production_stats.with_feedback, staging_stats.with_feedback) >= ab.min_samples
    if production_stats.with_feedback >= 2 and staging_stats.with_feedback >= 2:
        sequential = two_sample(
            production_outcomes,
            staging_outcomes,
            ab.min_effect,
            ab.alpha,
            metric_named(metric).higher_is_better,
            clusters=clusters,
        )
    decision, reason = judge(
        settings, test, now, production_stats, staging_stats, sequential, enough, metric
    )
    decision, reason = hold(decision, reason, srm or [])
    return sequential, decision, reason


def _usable_truth(truth: pd.Series, task: str) -> pd.Series:
    """Feedback the metric can use: any label for a classifier, a finite number for a
    regression (the server refuses others; rows stored before that are left out, not fatal)."""
    usable = task_kind(task).usable_truth(truth)
    if (skipped := int((truth.notna() & ~usable).sum())) > 0:
        log.warning("A/B: %d feedback values are not numbers and are left out", skipped)
    return usable


def _store(settings: Settings, engine: sa.Engine, evaluation: Evaluation) -> None:
    from driftloop.reports.ab import render_html

    with session_scope(engine) as session:
        row = ABEvaluation(
            test_id=evaluation.test_id,
            decision=evaluation.decision,
            reason=evaluation.reason,
            metric=evaluation.metric,
            production_value=evaluation.production.metrics[evaluation.metric].value,
            staging_value=evaluation.staging.metrics[evaluation.metric].value,
            production_samples=evaluation.production.with_feedback,
            staging_samples=evaluation.staging.with_feedback,
            p_value=evaluation.sequential.p_value if evaluation.sequential else None,
            statistics={},
            created_at=evaluation.evaluated_at,
        )
        session.add(row)
        session.flush()
        evaluation.evaluation_id = row.id
        folder = settings.storage.reports_dir / "ab"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"ab-{evaluation.test_id:04d}-{row.id:06d}"
        json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
        evaluation.json_path, evaluation.html_path = str(json_path), str(html_path)
        record = evaluation.to_dict()
        atomic_write(json_path, json.dumps(record, indent=2, default=str))
        atomic_write(html_path, render_html(record))
        row.statistics = {k: record[k] for k in ("production", "staging", "sequential", "srm")}
        row.json_path, row.html_path = str(json_path), str(html_path)


def _act(settings: Settings, engine: sa.Engine, evaluation: Evaluation) -> None:
    """Carry out a decision in the registry, close the test, and note the move in the report."""
    evidence = {
        "evaluation_id": evaluation.evaluation_id,
        "report": evaluation.html_path,
        "sequential": evaluation.sequential.to_dict() if evaluation.sequential else None,
    }
    tested = (evaluation.production_version, evaluation.staging_version)
    if evaluation.decision == ABDecision.PROMOTE:
        move = promotion.promote(
            settings, engine, ACTOR, evaluation.reason, evidence, evaluation.test_id, tested
        )
    else:  # reject, or inconclusive: Staging is archived either way
        move = promotion.reject(
            settings,
            engine,
            ACTOR,
            evaluation.reason,
            evidence,
            evaluation.test_id,
            action=Action(evaluation.decision),
            expected=tested,
        )
    close_test(engine, evaluation.test_id, ENDED[evaluation.decision], evaluation.reason)
    evaluation.acted, evaluation.move = True, move.to_dict()
    if evaluation.json_path:
        atomic_write(
            Path(evaluation.json_path), json.dumps(evaluation.to_dict(), indent=2, default=str)
        )
    log.info("A/B test %s: %s (%s)", evaluation.test_id, evaluation.decision, evaluation.reason)


def recent_evaluations(engine: sa.Engine, limit: int = 20) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(ABEvaluation, ABTest)
            .join(ABTest, ABTest.id == ABEvaluation.test_id)
            .order_by(ABEvaluation.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": e.id,
                "test_id": t.id,
                "pair": f"{t.production_version} vs {t.staging_version}",
                "decision": e.decision,
                "metric": e.metric,
                "production": e.production_value,
                "staging": e.staging_value,
                "samples": f"{e.production_samples}/{e.staging_samples}",
                "p_value": e.p_value,
                "html_path": e.html_path,
                "created_at": e.created_at.isoformat(),
            }
            for e, t in rows
        ]
