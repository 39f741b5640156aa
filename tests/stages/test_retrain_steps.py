"""What the retrain steps hand each other survives the trip through Airflow: each result turns
into JSON and back into an equal object, and a task recognises which step it was given."""

from __future__ import annotations

import json

import pytest

from driftloop.gate.statistics import GateResult
from driftloop.stages.retrain_steps import (
    Assembly,
    Decision,
    Registered,
    Scored,
    Skip,
    Trained,
    from_xcom,
)
from driftloop.vocabulary import GateOutcome, RetrainDecision, Trigger

RESULT = GateResult(
    GateOutcome.INSUFFICIENT_EVIDENCE,
    "too wide to decide on 40 rows",
    "accuracy",
    "tango score interval, paired proportions",
    40,
    0.8,
    0.75,
    0.05,
    -0.1,
    None,
    0.02,
    0.05,
    1,
)
ASSEMBLY = Assembly(
    "/h/training/t/train.csv", "/h/training/t/holdout.csv", "ab12" * 16, "3", 7, Trigger.DRIFT
)
TRAINED = Trained(ASSEMBLY, "run1", "models:/m1", "Accuracy", "Decision Tree Classifier", 0.81, 12)
SCORED = Scored(TRAINED, RESULT)
REGISTERED = Registered(SCORED, "4")
SKIP = Skip(
    Decision(
        RetrainDecision.SKIPPED,
        "the last retrain was less than 60 minutes ago",
        production_version="3",
        retrain_id=9,
    )
)


def _through_airflow(values: dict) -> dict:
    """What the next task receives: the XCom as JSON, read back."""
    return json.loads(json.dumps(values))


@pytest.mark.parametrize(
    "step", [SKIP, ASSEMBLY, TRAINED, SCORED, REGISTERED], ids=lambda step: type(step).__name__
)
def test_each_step_round_trips_through_xcom(step):
    received = from_xcom(_through_airflow(step.to_xcom()))
    assert type(received) is type(step) and received == step
    assert type(step).from_xcom(_through_airflow(step.to_xcom())) == step


def test_enums_arrive_as_enums_and_travel_as_plain_strings():
    xcom = _through_airflow(REGISTERED.to_xcom())
    assembly = xcom["scored"]["trained"]["assembly"]
    assert (
        assembly["trigger"] == "drift"
        and xcom["scored"]["result"]["outcome"] == "insufficient_evidence"
    )
    received = from_xcom(xcom)
    assert received.trained.assembly.trigger is Trigger.DRIFT
    assert received.scored.result.outcome is GateOutcome.INSUFFICIENT_EVIDENCE
    skip = from_xcom(_through_airflow(SKIP.to_xcom()))
    assert skip.decision.outcome is RetrainDecision.SKIPPED and skip.reason.startswith("the last")


def test_a_decision_with_evidence_round_trips_and_keeps_its_dict_shape():
    decision = Decision(
        RetrainDecision.INSUFFICIENT_EVIDENCE,
        "pending",
        "4",
        "3",
        "accuracy",
        0.8,
        0.75,
        "run1",
        11,
        RESULT,
    )
    values = _through_airflow(decision.to_dict())
    assert set(values) == {
        "decision",
        "reason",
        "model_version",
        "production_version",
        "metric",
        "challenger_score",
        "production_score",
        "run_id",
        "retrain_id",
        "evidence",
    }
    assert values["decision"] == "insufficient_evidence" and values["evidence"]["rows"] == 40
    assert Decision.from_dict(values) == decision


def test_the_bootstrap_assembly_names_its_run_and_logs_only_its_trigger():
    bootstrap = Assembly("/data/reference.csv", None, "cd34" * 16, None, None, Trigger.BOOTSTRAP)
    assert bootstrap.run_name == "bootstrap" and bootstrap.run_params == {"trigger": "bootstrap"}
    assert bootstrap.profile_source == "bootstrap"
    assert ASSEMBLY.run_name == "retrain-drift"
    assert ASSEMBLY.run_params == {
        "trigger": "drift",
        "drift_check_id": 7,
        "production_version": "3",
    }
    assert ASSEMBLY.profile_source == "training data of run ab12ab12ab12"
    assert from_xcom(_through_airflow(bootstrap.to_xcom())) == bootstrap
