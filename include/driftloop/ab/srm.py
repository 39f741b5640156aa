"""Sample-ratio mismatch: do the counts per variant match the traffic split in force?

A routing fault (a replica that ignores the split, a crashing variant whose requests are never
logged) or a logging fault (feedback lost for one variant) biases the A/B comparison without a
trace in the metrics. Statsig, Optimizely and Eppo check every experiment for it; so does
``ab_evaluate``, on every look, on two counts per variant:

- randomly routed requests (a request without a client key is split at random, so each one is
  a Bernoulli draw at the Staging weight);
- randomly routed requests that got feedback (feedback missing more often on one side biases
  the comparison just the same).

Sticky requests are left out: a sticky client sends all its requests to one variant, so its
requests are not independent draws; the unit there is the client (the log keeps its hashed key,
``predictions.client_key``, since 0015), and the benchmark reports the smallest fault a count of
clients can show.

The test is the Dirichlet-multinomial mixture SPRT (Lindon and Malek, "Anytime-valid inference
for multinomial count data", NeurIPS 2022): with expected shares ``pi`` and a Dirichlet prior of
concentration ``CONCENTRATION * pi``, the Bayes factor

    BF = [B(a + n) / B(a)] / prod(pi_i ** n_i)

is a nonnegative martingale under the null, so the chance it *ever* reaches ``1 / alpha`` is
at most ``alpha`` (Ville's inequality), however often the counts are looked at. ``alpha`` is
``SRM_ALPHA``: a false mismatch stops a good test, so it is rare by design.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import special

from driftloop.ab.traffic import PRODUCTION, STAGING
from driftloop.config import Settings
from driftloop.storage import RANDOM, ABEvaluation, TrafficSplitVersion, session_scope
from driftloop.vocabulary import ABDecision

SRM_ALPHA = 0.001
CONCENTRATION = 1_000.0  # prior weight: most power near 1-3 point faults on a 50/50 split
METHOD = "Dirichlet-multinomial mixture SPRT (always valid)"
REQUESTS = "randomly routed requests"
FEEDBACK = "randomly routed requests with feedback"
LABELS = {REQUESTS: "requests", FEEDBACK: "feedback"}  # the ``check`` label in /metrics


@dataclass(frozen=True)
class SRMCheck:
    """One count checked against the split: ``counts`` Production, Staging."""

    what: str
    production: int
    staging: int
    expected_staging_share: float
    log_bayes_factor: float
    p_value: float  # 1 / Bayes factor, capped at 1: always valid
    alpha: float = SRM_ALPHA
    method: str = METHOD

    @property
    def mismatch(self) -> bool:
        return self.p_value <= self.alpha

    @property
    def observed_staging_share(self) -> float | None:
        total = self.production + self.staging
        return self.staging / total if total else None

    def sentence(self) -> str:
        observed = self.observed_staging_share
        shown = "n/a" if observed is None else f"{observed:.2%}"
        verdict = "MISMATCH" if self.mismatch else "matches"
        return (
            f"{self.what}: Staging {self.staging} of {self.production + self.staging} "
            f"({shown}) against the split's {self.expected_staging_share:.2%}: {verdict} "
            f"(always-valid p {self.p_value:.2g}, alpha {self.alpha:g}, {self.method})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mismatch": self.mismatch, "sentence": self.sentence()}


def log_bayes_factors(
    staging: np.ndarray, total: np.ndarray, share: float, concentration: float = CONCENTRATION
) -> np.ndarray:
    """``log BF`` of the two-category mixture SPRT for Staging counts out of ``total``
    (arrays: many looks at once, as the simulation needs)."""
    staging = np.asarray(staging, dtype=float)
    production = np.asarray(total, dtype=float) - staging
    a_s, a_p = concentration * share, concentration * (1 - share)
    return (
        special.betaln(a_s + staging, a_p + production)
        - special.betaln(a_s, a_p)
        - staging * math.log(share)
        - production * math.log(1 - share)
    )


def check(what: str, production: int, staging: int, share: float) -> SRMCheck:
    """The counts of one kind against the Staging weight in force."""
    if not 0.0 < share < 1.0:  # everything to one side: nothing to mismatch against
        return SRMCheck(what, production, staging, share, 0.0, 1.0)
    log_bf = float(log_bayes_factors(np.array(staging), np.array(production + staging), share))
    return SRMCheck(what, production, staging, share, log_bf, min(1.0, math.exp(-log_bf)))


def mismatches(checks: list[SRMCheck]) -> list[SRMCheck]:
    return [c for c in checks if c.mismatch]


# --- the checks of one A/B test --------------------------------------------------------------


def split_checks(settings: Settings, engine: sa.Engine, rows: pd.DataFrame) -> list[SRMCheck]:
    """Both checks on a test's rows (``variant``, ``request_id``, ``assignment``, ``status``,
    ``has_truth``, ``split_version``), against the Staging weight of the newest split version
    the rows were routed under. Rows without a split version (logged before the server kept
    it) cannot be held to a split and are left out."""
    randomized = rows[(rows["assignment"] == RANDOM) & rows["split_version"].notna()]
    if randomized.empty:
        return []
    newest = int(randomized["split_version"].max())
    randomized = randomized[randomized["split_version"] == newest]
    with session_scope(engine) as session:
        share = session.scalar(
            sa.select(TrafficSplitVersion.staging_weight).where(
                TrafficSplitVersion.model_name == settings.model.name,
                TrafficSplitVersion.version == newest,
            )
        )
    if share is None:  # version 0 (never saved: the configured default) or unknown
        share = settings.serving.default_staging_weight if newest == 0 else None
    if share is None:
        return []
    answered = randomized[(randomized["status"] == 200) & randomized["has_truth"]]
    checks = []
    for what, frame in ((REQUESTS, randomized), (FEEDBACK, answered)):
        per_variant = frame.groupby("variant")["request_id"].nunique()
        checks.append(
            check(
                what,
                int(per_variant.get(PRODUCTION, 0)),
                int(per_variant.get(STAGING, 0)),
                float(share),
            )
        )
    return checks


def hold(decision: ABDecision, reason: str, checks: list[SRMCheck]) -> tuple[ABDecision, str]:
    """A mismatch holds back the sequential test's promotion or rejection (a broken guardrail
    still rejects: a failing Staging is no better for a biased count), and is named beside an
    inconclusive end."""
    mismatched = mismatches(checks)
    said = "; ".join(c.sentence() for c in mismatched)
    if mismatched and decision in (ABDecision.PROMOTE, ABDecision.REJECT):
        if not reason.startswith("guardrail"):
            return ABDecision.CONTINUE, (
                f"sample-ratio mismatch: no decision while the counts do not match the split "
                f"({said}); the test would have said: {reason}"
            )
    elif mismatched and decision == ABDecision.INCONCLUSIVE:
        return decision, f"{reason}; sample-ratio mismatch: {said}"
    return decision, reason


def mismatched_before(engine: sa.Engine, test_id: int) -> bool:
    """Whether an earlier look at the test found a mismatch (its alert was sent then)."""
    with session_scope(engine) as session:
        stored = session.scalars(
            sa.select(ABEvaluation.statistics).where(ABEvaluation.test_id == test_id)
        ).all()
    return any(any(c.get("mismatch") for c in (s or {}).get("srm") or []) for s in stored)
