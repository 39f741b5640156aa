"""What the retrain steps hand each other, and how a retraining attempt ends.

assemble -> :class:`Assembly` (or a recorded :class:`Skip`) -> train -> :class:`Trained` ->
evaluate -> :class:`Scored` -> register -> :class:`Registered` -> gate -> :class:`Decision`.
Each is frozen and holds the one before it, and each converts to and from what Airflow passes
between tasks (:meth:`to_xcom`, a JSON-ready dict tagged with its step, and :func:`from_xcom`):
paths, ids and numbers, never frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from driftloop.gate.statistics import GateResult
from driftloop.storage import RetrainRun, session_scope, utcnow
from driftloop.vocabulary import RetrainDecision, Trigger


@dataclass(frozen=True)
class Decision:
    """The end of a retraining attempt, as stored in ``retrain_runs`` and shown to people."""

    outcome: RetrainDecision
    reason: str
    model_version: str | None = None
    production_version: str | None = None
    metric: str | None = None
    challenger_score: float | None = None
    production_score: float | None = None
    run_id: str | None = None
    retrain_id: int | None = None
    evidence: GateResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """As XComs and alert payloads carry it: the outcome under its stored name, "decision"
        (the ``retrain_runs`` column), so consumers of the webhook see what they always saw."""
        values = asdict(self)
        values = {"decision": values.pop("outcome"), **values}
        values["evidence"] = self.evidence.to_dict() if self.evidence else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Decision:
        evidence = values.get("evidence")
        values = dict(values)
        outcome = values.pop("decision", None) or values.pop("outcome")
        return cls(
            **{
                **values,
                "outcome": RetrainDecision(outcome),
                "evidence": GateResult.from_dict(evidence) if evidence else None,
            }
        )


def record(
    engine: sa.Engine,
    model: str,
    decision: Decision,
    trigger: Trigger,
    drift_check_id: int | None,
    details: dict[str, Any] | None = None,
) -> Decision:
    """Store ``model``'s decision (and any gate numbers) in ``retrain_runs``; return it with
    its id."""
    evidence = decision.evidence
    with session_scope(engine) as session:
        row = RetrainRun(
            model_name=model,
            trigger=trigger,
            drift_check_id=drift_check_id,
            decision=decision.outcome,
            reason=decision.reason,
            model_version=decision.model_version,
            production_version=decision.production_version,
            metric=decision.metric,
            challenger_score=decision.challenger_score,
            production_score=decision.production_score,
            mlflow_run_id=decision.run_id,
            details=details or {},
            created_at=utcnow(),
            **(evidence.stored_columns() if evidence else {}),
        )
        session.add(row)
        session.flush()
        return replace(decision, retrain_id=row.id)


# --- what the steps exchange -----------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """No retraining: the recorded decision says why."""

    decision: Decision

    @property
    def reason(self) -> str:
        return self.decision.reason

    def to_xcom(self) -> dict[str, Any]:
        return {"step": "skip", "decision": self.decision.to_dict()}

    @classmethod
    def from_xcom(cls, values: dict[str, Any]) -> Skip:
        return cls(Decision.from_dict(values["decision"]))


@dataclass(frozen=True)
class Assembly:
    """The training set and the gate holdout (CSV files), and the lineage of the attempt.

    ``bootstrap`` trains the first version from the initial reference split: no holdout and no
    Production version to compare with.
    """

    train_path: str
    holdout_path: str | None
    digest: str  # of the training rows: the version's data identity
    production_version: str | None
    drift_check_id: int | None
    trigger: Trigger
    # Drift checks whose events waited beside ``drift_check_id``'s and were merged into it.
    merged_drift_checks: tuple[int, ...] = ()
    # The rows the version's drift reference is profiled from (the window since the drift,
    # ``assembly.reference_rows``); None: the training set. The source says which rows.
    reference_path: str | None = None
    reference_source: str = ""

    @property
    def run_name(self) -> str:
        return "bootstrap" if self.trigger == Trigger.BOOTSTRAP else f"retrain-{self.trigger}"

    @property
    def run_params(self) -> dict[str, Any]:
        """The lineage logged as the MLflow run's parameters."""
        if self.trigger == Trigger.BOOTSTRAP:
            return {"trigger": self.trigger}
        return {
            "trigger": self.trigger,
            "drift_check_id": self.drift_check_id,
            "production_version": self.production_version,
            **self.merge_details,
        }

    @property
    def merge_details(self) -> dict[str, Any]:
        """The merged drift checks, for the run's parameters and the stored decision."""
        if not self.merged_drift_checks:
            return {}
        return {"merged_drift_check_ids": ",".join(map(str, self.merged_drift_checks))}

    @property
    def profile_source(self) -> str:
        """Where the version's reference profile says it came from."""
        if self.trigger == Trigger.BOOTSTRAP:
            return self.run_name
        return self.reference_source or f"training data of run {self.digest[:12]}"

    def to_xcom(self) -> dict[str, Any]:
        return {"step": "assembly", **asdict(self)}

    @classmethod
    def from_xcom(cls, values: dict[str, Any]) -> Assembly:
        values = {k: v for k, v in values.items() if k != "step"}
        merged = tuple(values.pop("merged_drift_checks", ()) or ())
        return cls(
            **{**values, "trigger": Trigger(values["trigger"]), "merged_drift_checks": merged}
        )


@dataclass(frozen=True)
class Trained:
    """A trained and logged challenger (nothing registered yet), and its stored profile."""

    assembly: Assembly
    run_id: str
    model_uri: str
    metric: str  # the PyCaret metric training sorted by
    model_name: str | None
    holdout_score: float | None  # that metric on PyCaret's own test split
    profile_id: int | None  # its drift reference profile (Assembly.reference_path), stored
    reference_id: int | None = None  # its out-of-sample predictions (driftloop.performance)

    def to_xcom(self) -> dict[str, Any]:
        return {"step": "trained", **asdict(self), "assembly": self.assembly.to_xcom()}

    @classmethod
    def from_xcom(cls, values: dict[str, Any]) -> Trained:
        values = {k: v for k, v in values.items() if k != "step"}
        return cls(**{**values, "assembly": Assembly.from_xcom(values["assembly"])})


@dataclass(frozen=True)
class Scored:
    """The challenger and Production judged on the same gate holdout."""

    trained: Trained
    result: GateResult

    def to_xcom(self) -> dict[str, Any]:
        return {
            "step": "scored",
            "trained": self.trained.to_xcom(),
            "result": self.result.to_dict(),
        }

    @classmethod
    def from_xcom(cls, values: dict[str, Any]) -> Scored:
        return cls(Trained.from_xcom(values["trained"]), GateResult.from_dict(values["result"]))


@dataclass(frozen=True)
class Registered:
    """The challenger registered as a model version, with its lineage and profile."""

    scored: Scored
    version: str

    @property
    def trained(self) -> Trained:
        return self.scored.trained

    def to_xcom(self) -> dict[str, Any]:
        return {"step": "registered", "scored": self.scored.to_xcom(), "version": self.version}

    @classmethod
    def from_xcom(cls, values: dict[str, Any]) -> Registered:
        return cls(Scored.from_xcom(values["scored"]), values["version"])


Step = Skip | Assembly | Trained | Scored | Registered
STEPS: dict[str, type[Step]] = {
    "skip": Skip,
    "assembly": Assembly,
    "trained": Trained,
    "scored": Scored,
    "registered": Registered,
}


def from_xcom(values: dict[str, Any]) -> Step:
    """A step's result from what one task passed to the next."""
    return STEPS[values["step"]].from_xcom(values)
