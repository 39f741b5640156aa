"""A look at a running test with ``ab.design: paired``: Production's served answers and
Staging's shadow answers to the same labelled records (:mod:`driftloop.ab.paired`), decided by
the same rule as the unpaired design (:func:`driftloop.stages.ab_tests.judge`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from driftloop.ab.paired import paired_test
from driftloop.ab.paired_rows import paired_arms
from driftloop.ab.rows import load_rows
from driftloop.ab.srm import split_checks
from driftloop.ab.traffic import load_split
from driftloop.config import Settings
from driftloop.stages.ab_tests import Evaluation, judge
from driftloop.storage import BATCH, FORCED, ABTest
from driftloop.task import metric as metric_named
from driftloop.vocabulary import ABDecision, Role


def compute_paired(
    settings: Settings, engine: sa.Engine, test: ABTest, now: datetime, metric: str
) -> Evaluation:
    """``ab.design: paired``: Staging's shadow answers against Production's on the same
    labelled records (:mod:`driftloop.ab.paired`). The pairs share their requests, so a
    sample-ratio mismatch cannot bias them: it is reported, not held against the decision."""
    ab = settings.ab
    rows = load_rows(engine, test, shadow=True)
    arms = paired_arms(rows, test, settings.data.task, metric, ab.min_effect, ab.alpha)
    sequential = None
    if arms.pairs >= 2:
        sequential = paired_test(
            arms.production_outcomes,
            arms.staging_outcomes,
            ab.min_effect,
            ab.alpha,
            metric_named(metric).higher_is_better,
            arms.clusters,
        )
    enough = arms.pairs >= ab.min_samples
    decision, reason = judge(
        settings, test, now, arms.production, arms.staging, sequential, enough, metric
    )
    split = load_split(
        engine,
        test.model_name,
        settings.serving.default_staging_weight,
        settings.serving.default_shadow,
    )
    if decision == ABDecision.CONTINUE and not split.shadow:
        reason += "; shadow mode is off, so no new pairs arrive (driftloop traffic set --shadow)"
    served = rows[~rows["shadow"].astype(bool)]
    randomized = served[~served["assignment"].isin([FORCED, BATCH])]
    srm = split_checks(settings, engine, randomized[randomized["variant"].isin(list(Role))])
    return Evaluation.look(
        engine,
        test,
        now,
        metric,
        (decision, reason),
        (arms.production, arms.staging),
        sequential,
        arms.timeline,
        srm,
        paired={
            "design": "paired",
            "pairs": arms.pairs,
            "table": arms.table.to_dict() if arms.table else None,
            "shadow": split.shadow,
        },
    )
