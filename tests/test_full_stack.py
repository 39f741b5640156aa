"""The whole loop on real services and PostgreSQL: what `make demo` runs, asserted step by step.

Airflow's metadata, MLflow's backend store and driftloop's tables each get their own uniquely
named PostgreSQL database (all dropped afterwards); MLflow, Airflow's four components and the
prediction server run as separate processes with the commands the compose file uses, and no
process outlives the test.

The seeded scenario is a concept shift (five features move and the labels move with them), so
the bootstrapped model is clearly wrong on the new data: the drift must start a retrain, the
challenger must beat Production on the gate holdout and go to Staging, and on traffic from rows
no model trained on the A/B test must promote it. Promotion is the expected outcome here, not
merely an allowed one; the decision must also agree with the numbers stored beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from driftloop.demo import CLEAN_BATCHES, LoopDatabases, LoopPorts, run_loop, summary_lines
from driftloop.stack.processes import wait_until
from driftloop.storage import ABEvaluation, AuditRecord, session_scope

from .conftest import ROOT
from .support.postgres import POSTGRES_ADMIN_URL, require_postgres, temporary_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def _leftover_processes(marker: str) -> list[str]:
    """Processes of this test (found by its temporary folder) still alive."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if process.info["status"] == psutil.STATUS_ZOMBIE or not re.search(
                "airflow|mlflow|gunicorn|prediction_log", command
            ):
                continue
            if marker in command or any(marker in v for v in process.environ().values()):
                found.append(f"{process.pid} {command}")
    return found


def _existing_databases(names: list[str]) -> list[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                {"names": names},
            )
            return sorted(row[0] for row in rows)
    finally:
        admin.dispose()


def test_drift_retrain_staging_ab_promotion_on_real_services(tmp_path: Path, monkeypatch) -> None:
    require_postgres()
    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (
            name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL"
        ):
            monkeypatch.delenv(name)
    started = time.monotonic()
    names: list[str] = []
    with contextlib.ExitStack() as resources:

        def database(prefix: str) -> str:
            url = resources.enter_context(temporary_database(prefix))
            names.append(str(sa.engine.make_url(url).database))
            return url

        databases = LoopDatabases(
            airflow=database("airflow_test"),
            mlflow=database("mlflow_test"),
            driftloop=database("driftloop_test"),
        )
        result = run_loop(
            ROOT / "driftloop.demo.yaml",
            tmp_path / "home",
            databases,
            LoopPorts(None, None, None),
            progress=lambda line: print(f"[full-stack] {line}", flush=True),
        )
        print("\n".join(summary_lines(result)))

        # the api-server mounted the driftloop plugin (the demo checks it answers) and says where
        assert result.urls["driftloop page"].endswith("/plugin/driftloop"), result.urls
        # drift: the clean batches pass, the first drifting one is drift, announced once
        statuses = [b["status"] for b in result.batches]
        assert statuses == ["no_drift"] * CLEAN_BATCHES + ["drift"], result.batches
        assert result.drift_events == 1
        # retrain: started by the event, the challenger beats Production on the gate holdout
        bootstrap, retrain = result.retrain_runs
        assert bootstrap["trigger"] == "bootstrap" and retrain["trigger"] == "drift"
        assert retrain["decision"] == "staging", retrain["reason"]
        assert retrain["challenger_score"] > retrain["production_score"]
        assert (retrain["model_version"], retrain["production_version"]) == ("2", "1")
        # the A/B test: promotion, and it agrees with the statistics stored beside it
        decision = result.decision
        assert decision is not None and decision["decision"] == "promote", result.evaluations
        engine = sa.create_engine(databases.driftloop)
        resources.callback(engine.dispose)
        with session_scope(engine) as session:
            stored = session.get(ABEvaluation, decision["id"])
            sequential = stored.statistics["sequential"]
            assert sequential["significant"] and sequential["difference"] > 0
            assert sequential["p_value"] <= 0.05 and sequential["ci_low"] > 0
            assert stored.staging_value > stored.production_value
            assert min(stored.production_samples, stored.staging_samples) >= 150
            (audit,) = session.scalars(sa.select(AuditRecord)).all()
            assert (audit.action, audit.actor) == ("promote", "ab_evaluate")
            assert (audit.production_before, audit.production_after) == ("1", "2")
        assert Path(decision["report"]).exists()
        # the registry and the server follow
        roles = {v["version"]: (v["aliases"], v["stage"]) for v in result.versions}
        assert roles == {"1": ("-", "Archived"), "2": ("production", "Production")}, roles
        assert result.after == {"status": 200, "version": "2", "variant": "production"}
        assert result.traffic["failed"] == {} and result.traffic["error"] is None
        assert sum(result.traffic["answered"].values()) > 300 and result.traffic["feedback"] > 300
        # lineage of the promoted version (read from the MLflow server before it stopped)
        tags = result.lineage
        assert tags["driftloop.gate"] == "staging" and tags["driftloop.drift_batch_id"] == "4"
        assert tags["driftloop.data_digest"] and tags["driftloop.profile_id"]
        marker = str(tmp_path)
    assert wait_until(
        lambda: None if _leftover_processes(marker) else True,
        20,
        "the test's processes to exit",
        diagnostics=lambda: "\n".join(_leftover_processes(marker)),
    )
    assert _existing_databases(names) == []
    print(f"[full-stack] total {time.monotonic() - started:.0f}s")
