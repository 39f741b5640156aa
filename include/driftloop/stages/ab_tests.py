"""An A/B test's looks and how a decision ends a test: the record of one look
(:class:`Evaluation`), the rule that decides a look (:func:`judge`, for either design), the
status each decision leaves, and closing the test's row.

Both the look (``ab_evaluation``) and a person's approval (``approval``) end tests, so this is
their shared ground and neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.ab.rows import unmatched_feedback
from driftloop.ab.sequential import MIN_CLUSTERS, SequentialResult
from driftloop.ab.srm import SRMCheck
from driftloop.ab.statistics import VariantStats
from driftloop.config import Settings
from driftloop.storage import ABTest, session_scope
from driftloop.vocabulary import ABDecision, ABTestStatus

ENDED = {  # the test's status once a decision ends it
    ABDecision.PROMOTE: ABTestStatus.PROMOTED,
    ABDecision.REJECT: ABTestStatus.REJECTED,
    ABDecision.INCONCLUSIVE: ABTestStatus.INCONCLUSIVE,
}


@dataclass
class Evaluation:
    """The numbers and the decision of one look at a test."""

    test_id: int
    model_name: str
    production_version: str
    staging_version: str
    started_at: datetime
    metric: str
    decision: ABDecision
    reason: str
    production: VariantStats
    staging: VariantStats
    sequential: SequentialResult | None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    evaluated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    evaluation_id: int | None = None
    json_path: str | None = None
    html_path: str | None = None
    acted: bool = False
    move: dict[str, Any] | None = None
    unmatched_feedback: int = 0
    approval: dict[str, Any] | None = None  # the pending approval the decision waits on
    srm: list[SRMCheck] = field(default_factory=list)  # sample-ratio mismatch checks
    paired: dict[str, Any] | None = None  # ab.design paired: the table of pairs, the design

    @classmethod
    def look(
        cls,
        engine: sa.Engine,
        test: ABTest,
        now: datetime,
        metric: str,
        verdict: tuple[ABDecision, str],
        arms: tuple[VariantStats, VariantStats],
        sequential: SequentialResult | None,
        timeline: list[dict[str, Any]],
        srm: list[SRMCheck],
        paired: dict[str, Any] | None = None,
    ) -> Evaluation:
        """One look at ``test`` as either design records it: the test's identity from its row,
        the decision and reason, the (Production, Staging) arms, and the feedback no request
        matched counted now; ``paired`` is the paired design's table of pairs."""
        decision, reason = verdict
        production, staging = arms
        return cls(
            test.id,
            test.model_name,
            test.production_version,
            test.staging_version,
            test.started_at,
            metric,
            decision,
            reason,
            production,
            staging,
            sequential,
            timeline,
            now,
            unmatched_feedback=unmatched_feedback(engine, test.model_name),
            srm=srm,
            paired=paired,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_id": self.test_id,
            "evaluation_id": self.evaluation_id,
            "model_name": self.model_name,
            "production_version": self.production_version,
            "staging_version": self.staging_version,
            "started_at": self.started_at.isoformat(),
            "evaluated_at": self.evaluated_at.isoformat(),
            "metric": self.metric,
            "decision": self.decision,
            "reason": self.reason,
            "acted": self.acted,
            "move": self.move,
            "unmatched_feedback": self.unmatched_feedback,
            "approval": self.approval,
            "production": self.production.to_dict(),
            "staging": self.staging.to_dict(),
            "sequential": self.sequential.to_dict() if self.sequential else None,
            "srm": [c.to_dict() for c in self.srm],
            "paired": self.paired,
            "timeline": self.timeline,
            "json_path": self.json_path,
            "html_path": self.html_path,
        }


def judge(
    settings: Settings,
    test: ABTest,
    now: datetime,
    production: VariantStats,
    staging: VariantStats,
    sequential: SequentialResult | None,
    enough: bool,
    metric: str,
) -> tuple[ABDecision, str]:
    """The decision of one look from both variants' numbers and the sequential test (None:
    too little feedback yet): guardrails first, then the test, then the test's age."""
    ab = settings.ab
    if staging.requests >= ab.guardrail_min_requests:
        if staging.error_rate > ab.max_error_rate:
            return ABDecision.REJECT, (
                f"guardrail: Staging failed {staging.failed_requests} of {staging.requests} "
                f"requests ({staging.error_rate:.1%} > {ab.max_error_rate:.1%})"
            )
        p99 = staging.latency_ms.get("p99")
        if p99 is not None and p99 > ab.max_p99_ms:
            return (
                ABDecision.REJECT,
                f"guardrail: Staging's p99 latency {p99:.0f} ms > {ab.max_p99_ms:g} ms",
            )
    few_clients = sequential is not None and not sequential.enough_clusters
    if sequential is not None and enough and sequential.significant and not few_clients:
        better = sequential.difference > 0
        numbers = (
            f"{metric} Staging {staging.metrics[metric].value:.4f} vs Production "
            f"{production.metrics[metric].value:.4f} over {staging.with_feedback} and "
            f"{production.with_feedback} records ({sequential.staging_clusters} and "
            f"{sequential.production_clusters} clients or requests); {sequential.method}, "
            f"always-valid p {sequential.p_value:.4f} <= alpha {ab.alpha:g}"
        )
        if better:
            return ABDecision.PROMOTE, f"Staging is better: {numbers}"
        return ABDecision.REJECT, f"Staging is worse: {numbers}"
    if now - test.started_at >= timedelta(days=ab.max_days):
        return ABDecision.INCONCLUSIVE, (
            f"no significant difference after {ab.max_days:g} days "
            f"({staging.with_feedback} and {production.with_feedback} records with feedback): "
            "Production stays"
        )
    if few_clients and sequential is not None:
        return ABDecision.CONTINUE, (
            f"collecting: {sequential.staging_clusters} Staging and "
            f"{sequential.production_clusters} Production clients (or requests) with feedback, "
            f"{MIN_CLUSTERS} each needed before any decision"
        )
    if not enough:
        return ABDecision.CONTINUE, (
            f"collecting: {staging.with_feedback} Staging and {production.with_feedback} "
            f"Production records with feedback, {ab.min_samples} each needed"
        )
    return ABDecision.CONTINUE, (
        f"collecting: no significant difference yet (always-valid p {sequential.p_value:.3f})"
        if sequential
        else "collecting"
    )


def close_test(engine: sa.Engine, test_id: int, status: ABTestStatus, reason: str) -> None:
    with session_scope(engine) as session:
        test = session.get(ABTest, test_id)
        if test is not None and test.status == ABTestStatus.RUNNING:
            test.status, test.ended_at, test.reason = status, datetime.now(UTC), reason
