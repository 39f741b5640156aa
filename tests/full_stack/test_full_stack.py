"""The whole loop of three models at once, on real services, PostgreSQL and Airflow's
CeleryExecutor (issue 30, item 7; the executor since issue 10): white wine (classification,
drift planted), red wine (classification) and scikit-learn's diabetes set (regression) on one
MLflow server, one Airflow (each model its own DAGs and Assets), one prediction server and one
driftloop database (``driftloop demo --models 3``, :mod:`driftloop.demo.models`).

Airflow runs on Celery for real: two ``airflow celery worker`` processes on a real Redis
broker, the result backend on PostgreSQL, each task on the queue its DAG names, Flower beside
them. Airflow's metadata, MLflow's backend store and driftloop's tables each get their own
uniquely named PostgreSQL database, dropped afterwards; no process outlives the test
(``tests.support.full_loop.loop_databases``).

Drift in white wine retrains, stages, A/B-tests and promotes white wine only, asserted step
by step as in one model's loop: its clean batches pass, its drifting batches (landed
together) are checked by mapped tasks in one run and announced in one event, the one retrain
takes the newest check and merges the others, the challenger beats Production on the gate
holdout, and the A/B decision agrees with the statistics stored beside it. Red wine and
diabetes land a clean batch each, checked by their own ``drift_monitor`` beside white wine's,
and keep answering from their unchanged Production versions: each model gets continuous
requests with feedback at its ``/models/<name>/predict`` from the server's start until after
the promotion, and not one of them fails. The LocalExecutor runs the same loop in ``make demo``
(SQLite) and in the Airflow-level tests (tests/faults, tests/ui).

One test for both (the executor and several models) since CI time became scarce: each took
about six minutes of a two-core machine on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.demo.declared import DRIFTING, MODELS
from driftloop.demo.environment import CLEAN_BATCHES, DRIFTING_BATCHES
from driftloop.demo.executor import LoopCelery
from driftloop.demo.loop import LoopPorts
from driftloop.demo.models import ModelsLoopResult, run_models_loop, summary_lines
from driftloop.events import model_dag_id
from driftloop.stack.celery_workers import CeleryWorker
from driftloop.storage import (
    ABEvaluation,
    ABTest,
    AuditRecord,
    DriftCheck,
    RetrainRun,
    session_scope,
)
from tests.conftest import ROOT
from tests.support.full_loop import loop_databases
from tests.support.redis import require_redis, temporary_redis_database

pytestmark = pytest.mark.integration

QUIET = tuple(name for name in MODELS if name != DRIFTING)
# one worker on the default queue only, one on both: only the second may take training tasks
WORKERS = (
    CeleryWorker("default", ("default",)),
    CeleryWorker("training", ("default", "training")),
)


@pytest.fixture
def broker_url() -> Iterator[str]:
    require_redis()
    with temporary_redis_database() as url:
        yield url


@pytest.mark.timeout(1500)
def test_three_models_on_celery_promote_only_the_drifting_one(
    tmp_path: Path, monkeypatch, broker_url
) -> None:
    started = time.monotonic()
    with loop_databases(tmp_path, monkeypatch) as (databases, resources):
        result = run_models_loop(
            ROOT / "driftloop.demo.yaml",
            tmp_path / "home",
            databases=databases,
            ports=LoopPorts(None, None, None),
            progress=lambda line: print(f"[full stack] {line}", flush=True),
            ab_timeout=600,
            celery=LoopCelery(broker_url, WORKERS, flower=True),
        )
        print("\n".join(summary_lines(result)))
        assert list(result.models) == list(MODELS)
        # the api-server mounted the driftloop plugin (the run checks it answers)
        assert result.urls["driftloop page"].endswith("/plugin/driftloop"), result.urls
        engine = sa.create_engine(databases.driftloop)
        resources.callback(engine.dispose)
        _check_the_drifting_model(result, engine)
        _check_the_quiet_models(result)
        _check_where_tasks_ran(result)

        # not one failed request, to any model
        for name, outcome in result.models.items():
            assert outcome.traffic["failed"] == {}, (name, outcome.traffic)
            assert outcome.traffic["error"] is None, (name, outcome.traffic)
        # the shared database: every model's rows, and the A/B test of the drifting one only
        with session_scope(engine) as session:
            tested = session.scalars(sa.select(ABTest.model_name)).all()
            trained = session.scalars(sa.select(RetrainRun.model_name)).all()
        assert tested == [DRIFTING]
        assert sorted(trained) == sorted([*MODELS, DRIFTING])
    print(f"[full stack] total {time.monotonic() - started:.0f}s")


def _check_the_drifting_model(result: ModelsLoopResult, engine: sa.Engine) -> None:
    """Drift, one retrain that merges the other checks, Staging, an A/B promotion that agrees
    with its stored statistics, the registry, the server and the lineage following."""
    drifting = result.models[DRIFTING]
    statuses = [b["status"] for b in drifting.batches]
    assert statuses == ["no_drift"] * CLEAN_BATCHES + ["drift"] * DRIFTING_BATCHES, statuses
    assert drifting.drift_events == 1
    bootstrap, retrain = drifting.retrain_runs
    assert (bootstrap["trigger"], retrain["trigger"]) == ("bootstrap", "drift")
    assert retrain["decision"] == "staging", retrain["reason"]
    assert retrain["challenger_score"] > retrain["production_score"]
    assert (retrain["model_version"], retrain["production_version"]) == ("2", "1")
    with session_scope(engine) as session:
        checks = session.scalars(
            sa.select(DriftCheck)
            .where(DriftCheck.model_name == DRIFTING)
            .order_by(DriftCheck.batch_id)
        ).all()
        drifted = [c for c in checks if c.status == "drift"]
        newest, merged = drifted[-1], drifted[:-1]
        assert retrain["drift_check_id"] == newest.id
        assert [c.merged_into for c in merged] == [newest.id] * len(merged)
        assert retrain["details"]["merged_drift_checks"] == sorted(c.id for c in merged)
    decision = drifting.decision
    assert decision is not None and decision["decision"] == "promote", drifting.evaluations
    with session_scope(engine) as session:
        stored = session.get(ABEvaluation, decision["id"])
        sequential = stored.statistics["sequential"]
        assert sequential["significant"] and sequential["difference"] > 0
        assert sequential["p_value"] <= 0.05 and sequential["ci_low"] > 0
        assert stored.staging_value > stored.production_value
        assert min(stored.production_samples, stored.staging_samples) >= 150
        (audit,) = session.scalars(sa.select(AuditRecord)).all()
        assert (audit.model_name, audit.action, audit.actor) == (DRIFTING, "promote", "ab_evaluate")
    assert Path(decision["report"]).exists()
    assert drifting.promotions == [
        {"action": "promote", "actor": "ab_evaluate", "before": "1", "after": "2"}
    ]
    roles = {v["version"]: (v["aliases"], v["stage"]) for v in drifting.versions}
    assert roles == {"1": ("-", "Archived"), "2": ("production", "Production")}, roles
    assert drifting.after == {"status": 200, "version": "2", "variant": "production"}
    # both variants answered during the test; version 2 as Production once promoted
    answered = set(drifting.traffic["answered"])
    assert {"production v1", "staging v2"} <= answered
    assert answered <= {"production v1", "staging v2", "production v2"}, drifting.traffic
    assert result.promoted == [DRIFTING]
    # the promoted version's lineage (read from the MLflow server before it stopped)
    tags = drifting.lineage
    assert tags["driftloop.gate"] == "staging"
    assert tags["driftloop.drift_batch_id"] == str(newest.batch_id)
    merged_ids = ",".join(str(i) for i in sorted(c.id for c in merged))
    assert tags["driftloop.merged_drift_check_ids"] == merged_ids, (tags, merged_ids)
    assert tags["driftloop.data_digest"] and tags["driftloop.profile_id"]


def _check_the_quiet_models(result: ModelsLoopResult) -> None:
    """Their clean batch checked and passed; no drift event, retrain, A/B test or move; their
    version 1 still Production, answering all along."""
    for name in QUIET:
        quiet = result.models[name]
        assert [b["status"] for b in quiet.batches] == ["no_drift"], (name, quiet.batches)
        assert quiet.drift_events == 0, name
        assert [r["trigger"] for r in quiet.retrain_runs] == ["bootstrap"], name
        assert quiet.evaluations == [] and quiet.promotions == [], name
        roles = {v["version"]: (v["aliases"], v["stage"]) for v in quiet.versions}
        assert roles == {"1": ("production", "Production")}, (name, roles)
        assert quiet.after == {"status": 200, "version": "1", "variant": "production"}
        assert set(quiet.traffic["answered"]) == {"production v1"}, (name, quiet.traffic)
        assert sum(quiet.traffic["answered"].values()) >= 150, (name, quiet.traffic)
        assert quiet.traffic["feedback"] >= 150, (name, quiet.traffic)


def _check_where_tasks_ran(result: ModelsLoopResult) -> None:
    """Every task on a worker: the drifting model's training and scoring of the challenger on
    the ``training`` queue and on the worker serving it, every other task on ``default``."""
    instances = [ti for ti in result.task_instances if ti["state"] == "success"]
    queues = {(ti["dag_id"], ti["task_id"]): ti["queue"] for ti in instances}
    retrain = model_dag_id("retrain", DRIFTING)
    assert queues[(retrain, "train")] == queues[(retrain, "evaluate")] == "training"
    for name in MODELS:
        assert queues[(model_dag_id("drift_monitor", name), "check_batch")] == "default", name
    assert {q for (_, task_id), q in queues.items() if task_id not in ("train", "evaluate")} == {
        "default"
    }
    assert result.celery is not None
    ran = result.celery.tasks
    assert "train" in ran["training"] and "evaluate" in ran["training"]
    assert "train" not in ran["default"] and ran["default"]  # both workers took tasks
    # every task that succeeded ran on one of the two workers (a retry would show twice)
    assert set(ran["default"] + ran["training"]) == {ti["task_id"] for ti in instances}
    # the drifting model's day of data (its clean batches, then the drifting ones), landed
    # together and checked in one run by one mapped task per batch
    drift_monitor = model_dag_id("drift_monitor", DRIFTING)
    checks = [
        ti["map_index"]
        for ti in instances
        if (ti["dag_id"], ti["task_id"]) == (drift_monitor, "check_batch") and ti["map_index"] >= 0
    ]
    assert sorted(checks) == list(range(CLEAN_BATCHES + DRIFTING_BATCHES)), checks
    # Flower, as the compose file's celery profile runs it, sees both workers
    assert result.celery.flower_workers == ["default", "training"]
    assert result.urls["Flower"] == result.celery.flower_url
