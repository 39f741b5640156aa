"""The whole loop of three models at once on real services and PostgreSQL (issue 30, item 7):
white wine (classification, drift planted), red wine (classification) and scikit-learn's
diabetes set (regression) on one MLflow server, one Airflow (each model its own DAGs and
Assets), one prediction server and one driftloop database (``driftloop demo --models 3``,
:mod:`driftloop.demo.models`).

Drift in white wine retrains, stages, A/B-tests and promotes white wine only; red wine and
diabetes land a clean batch each, checked by their own ``drift_monitor`` beside white wine's,
and keep answering from their unchanged Production versions: each model gets continuous
requests with feedback at its ``/models/<name>/predict`` from the server's start until after
the promotion, and not one of them fails. The LocalExecutor runs the DAGs (the Celery test,
test_full_stack.py, covers the executor); everything else is as in the one-model loop.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop.demo.declared import DRIFTING, MODELS
from driftloop.demo.environment import CLEAN_BATCHES, DRIFTING_BATCHES
from driftloop.demo.loop import LoopPorts
from driftloop.demo.models import run_models_loop, summary_lines
from driftloop.storage import ABTest, RetrainRun, session_scope
from tests.conftest import ROOT
from tests.support.full_loop import loop_databases

pytestmark = pytest.mark.integration

QUIET = tuple(name for name in MODELS if name != DRIFTING)


@pytest.mark.timeout(1200)
def test_drift_in_one_of_three_models_promotes_it_alone(tmp_path: Path, monkeypatch) -> None:
    started = time.monotonic()
    with loop_databases(tmp_path, monkeypatch) as (databases, resources):
        result = run_models_loop(
            ROOT / "driftloop.demo.yaml",
            tmp_path / "home",
            databases=databases,
            ports=LoopPorts(None, None, None),
            progress=lambda line: print(f"[three models] {line}", flush=True),
            ab_timeout=600,
        )
        print("\n".join(summary_lines(result)))
        assert list(result.models) == list(MODELS)

        # the drifting model: its clean batches pass, its drifting ones drift in one event; one
        # retrain, its challenger staged, and the A/B test promotes it
        drifting = result.models[DRIFTING]
        statuses = [b["status"] for b in drifting.batches]
        assert statuses == ["no_drift"] * CLEAN_BATCHES + ["drift"] * DRIFTING_BATCHES, statuses
        assert drifting.drift_events == 1
        bootstrap, retrain = drifting.retrain_runs
        assert (bootstrap["trigger"], retrain["trigger"]) == ("bootstrap", "drift")
        assert retrain["decision"] == "staging", retrain["reason"]
        assert (retrain["model_version"], retrain["production_version"]) == ("2", "1")
        decision = drifting.decision
        assert decision is not None and decision["decision"] == "promote", drifting.evaluations
        assert decision["statistics"]["sequential"]["significant"]
        assert drifting.promotions == [
            {"action": "promote", "actor": "ab_evaluate", "before": "1", "after": "2"}
        ]
        roles = {v["version"]: (v["aliases"], v["stage"]) for v in drifting.versions}
        assert roles == {"1": ("-", "Archived"), "2": ("production", "Production")}, roles
        assert drifting.after == {"status": 200, "version": "2", "variant": "production"}
        # both variants answered during the test; version 2 as Production once promoted
        answered = set(drifting.traffic["answered"])
        assert (
            {"production v1", "staging v2"}
            <= answered
            <= {
                "production v1",
                "staging v2",
                "production v2",
            }
        ), drifting.traffic
        assert result.promoted == [DRIFTING]

        # the others: their clean batch checked and passed, no drift event, no retrain, no A/B
        # test, no move; their version 1 still Production and answering
        for name in QUIET:
            quiet = result.models[name]
            assert [b["status"] for b in quiet.batches] == ["no_drift"], (name, quiet.batches)
            assert quiet.drift_events == 0, name
            assert [r["trigger"] for r in quiet.retrain_runs] == ["bootstrap"], name
            assert quiet.evaluations == [] and quiet.promotions == [], name
            roles = {v["version"]: (v["aliases"], v["stage"]) for v in quiet.versions}
            assert roles == {"1": ("production", "Production")}, (name, roles)
            assert quiet.after == {"status": 200, "version": "1", "variant": "production"}
            # answered all along by Production version 1 only
            assert set(quiet.traffic["answered"]) == {"production v1"}, (name, quiet.traffic)
            assert sum(quiet.traffic["answered"].values()) >= 150, (name, quiet.traffic)
            assert quiet.traffic["feedback"] >= 150, (name, quiet.traffic)

        # not one failed request, to any model
        for name, outcome in result.models.items():
            assert outcome.traffic["failed"] == {}, (name, outcome.traffic)
            assert outcome.traffic["error"] is None, (name, outcome.traffic)

        # the shared database: every model's rows, and the A/B test of the drifting one only
        engine = sa.create_engine(databases.driftloop)
        resources.callback(engine.dispose)
        with session_scope(engine) as session:
            tested = session.scalars(sa.select(ABTest.model_name)).all()
            trained = session.scalars(sa.select(RetrainRun.model_name)).all()
        assert tested == [DRIFTING]
        assert sorted(trained) == sorted([*MODELS, DRIFTING])
    print(f"[three models] total {time.monotonic() - started:.0f}s")
