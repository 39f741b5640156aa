"""The loop's words: each status, outcome, role and trigger that is stored in the database,
written to a report or sent in an alert, defined once.

They are ``StrEnum`` members, so each one is also its string: it compares equal to it, is
stored as it, and is written to JSON (and passed between Airflow tasks) as it. This module
imports nothing, so every layer can use it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A model version's role: its registry alias, and the A/B variant that answers a request."""

    PRODUCTION = "production"
    STAGING = "staging"


class BatchStatus(StrEnum):
    """Where an ingested batch stands (``batches.status``)."""

    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"  # failed validation; kept apart, reprocessable
    DUPLICATE = "duplicate"  # the same content as a batch already ingested


class Assignment(StrEnum):
    """How a request came to its variant (``predictions.assignment``)."""

    RANDOM = "random"  # drawn by the traffic split
    STICKY = "sticky"  # the client's key always lands on the same variant
    FORCED = "forced"  # the caller named the variant (X-Variant)
    BATCH = "batch"  # scored by a batch job, not served


class DriftStatus(StrEnum):
    """A drift check's verdict (``drift_checks.status``)."""

    DRIFT = "drift"
    NO_DRIFT = "no_drift"
    INSUFFICIENT_DATA = "insufficient_data"  # no feature had enough values to test
    FAILED = "failed"  # the check itself failed; its error is stored beside it


class GateOutcome(StrEnum):
    """What the gate made of a challenger (see ``driftloop.gate.statistics``)."""

    STAGING = "staging"
    REJECTED = "rejected"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class RetrainDecision(StrEnum):
    """How a retraining attempt ended (``retrain_runs.decision``): a gate outcome, a skip, or
    the first version registered as Production by ``bootstrap``."""

    STAGING = GateOutcome.STAGING.value
    REJECTED = GateOutcome.REJECTED.value
    INSUFFICIENT_EVIDENCE = GateOutcome.INSUFFICIENT_EVIDENCE.value
    SKIPPED = "skipped"
    PRODUCTION = Role.PRODUCTION.value


class GateTag(StrEnum):
    """A version's gate tag in the registry (``registry.GATE``): the outcome, ``pending`` for a
    version that waits for evidence, ``production`` for the one ``bootstrap`` registered."""

    STAGING = GateOutcome.STAGING.value
    REJECTED = GateOutcome.REJECTED.value
    PENDING = "pending"
    PRODUCTION = Role.PRODUCTION.value


class ThresholdMode(StrEnum):
    """How a drift statistic's threshold was set: calibrated per batch size, or fixed."""

    CALIBRATED = "calibrated"
    FIXED = "fixed"


class Trigger(StrEnum):
    """Why a retraining attempt ran (``retrain_runs.trigger``)."""

    DRIFT = "drift"
    DECAY = "decay"
    MANUAL = "manual"
    BOOTSTRAP = "bootstrap"
    REGATE = "regate"  # a pending version judged again on a grown holdout, without training


class ABDecision(StrEnum):
    """What one look at an A/B test decides (``ab_evaluations.decision``)."""

    PROMOTE = "promote"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"  # no difference within ``ab.max_days``: Production stays
    CONTINUE = "continue"


class Action(StrEnum):
    """A move between roles, as the audit log records it (``audit_records.action``): an A/B
    decision that ends a test, or a person's rollback."""

    PROMOTE = ABDecision.PROMOTE.value
    REJECT = ABDecision.REJECT.value
    INCONCLUSIVE = ABDecision.INCONCLUSIVE.value
    ROLLBACK = "rollback"
    DECLINED = "declined"  # a person declined a decision that waited for them: nothing moved
    EXPIRED = "expired"  # nobody answered a waiting decision in time: nothing moved
    ANSWERED_LATE = "answered_late"  # a person answered a settled decision: nothing moved


class ABTestStatus(StrEnum):
    """An A/B test's state (``ab_tests.status``): running, or how it ended."""

    RUNNING = "running"
    SUPERSEDED = "superseded"  # the (Production, Staging) pair changed under it
    PROMOTED = "promoted"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"


class ApprovalStatus(StrEnum):
    """Where a decision that waits for a person stands (``approvals.status``)."""

    PENDING = "pending"
    APPROVED = "approved"  # the person said yes; the decision was carried out
    DECLINED = "declined"  # the person said no: nothing moved, not asked again in this test
    EXPIRED = "expired"  # nobody answered in time: nothing moved, the test goes on
    SUPERSEDED = "superseded"  # something else moved the pair first (a guardrail, the CLI)


class ApprovalChoice(StrEnum):
    """The options the person is offered in Airflow (those of ``ApprovalOperator``)."""

    APPROVE = "Approve"
    REJECT = "Reject"
