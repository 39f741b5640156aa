"""The whole loop on real services and PostgreSQL, asserted step by step: what the full-stack
test asserts (tests/full_stack/test_full_stack.py, on Celery; ``make demo`` runs the same loop
on the LocalExecutor).

Airflow's metadata, MLflow's backend store and driftloop's tables each get their own uniquely
named PostgreSQL database (all dropped afterwards); MLflow, Airflow's components (and the Celery
workers) and the prediction server run as separate processes with the commands the compose file
uses, and no process outlives the test (``loop_databases``, which the test of several models,
tests/full_stack/test_three_models.py, shares).

The seeded scenario is a concept shift (five features move and the labels move with them), so
the bootstrapped model is clearly wrong on the new data. The drifting batches land together:
one drift_monitor run checks them in parallel and announces their drift in one event, and the
one retrain it starts takes the newest drift check and records the others as merged into it;
the challenger must beat Production on the gate holdout and go to Staging, and on traffic from
rows no model trained on the A/B test must promote it. Promotion is the expected outcome here,
not merely an allowed one; the decision must also agree with the numbers stored beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from driftloop.demo.environment import DRIFTING_BATCHES
from driftloop.demo.loop import (
    CLEAN_BATCHES,
    LoopCelery,
    LoopDatabases,
    LoopPorts,
    LoopResult,
    run_loop,
    summary_lines,
)
from driftloop.stack.processes import wait_until
from driftloop.storage import ABEvaluation, AuditRecord, DriftCheck, session_scope
from tests.conftest import ROOT
from tests.support.postgres import POSTGRES_ADMIN_URL, require_postgres, temporary_database


def _leftover_processes(marker: str) -> list[str]:
    """Processes of this test (found by its temporary folder) still alive."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if process.info["status"] == psutil.STATUS_ZOMBIE or not re.search(
                "airflow|mlflow|gunicorn|prediction_log|celery", command
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


@contextlib.contextmanager
def loop_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LoopDatabases, contextlib.ExitStack]]:
    """A clean environment and Airflow's, MLflow's and driftloop's own PostgreSQL databases
    for one run of the loop (and an ExitStack for the run's other resources); afterwards, that
    no process of the run (found by ``tmp_path``) outlives it and every database is dropped."""
    require_postgres()
    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (
            name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL"
        ):
            monkeypatch.delenv(name)
    names: list[str] = []
    with contextlib.ExitStack() as resources:

        def database(prefix: str) -> str:
            url = resources.enter_context(temporary_database(prefix))
            names.append(str(sa.engine.make_url(url).database))
            return url

        yield (
            LoopDatabases(
                airflow=database("airflow_test"),
                mlflow=database("mlflow_test"),
                driftloop=database("driftloop_test"),
            ),
            resources,
        )
    marker = str(tmp_path)
    assert wait_until(
        lambda: None if _leftover_processes(marker) else True,
        20,
        "the test's processes to exit",
        diagnostics=lambda: "\n".join(_leftover_processes(marker)),
    )
    assert _existing_databases(names) == []


def run_and_check_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, celery: LoopCelery | None = None
) -> LoopResult:
    """Run the loop from nothing, assert every step, and that nothing outlives it."""
    started = time.monotonic()
    label = "celery" if celery else "full-stack"
    with loop_databases(tmp_path, monkeypatch) as (databases, resources):
        result = run_loop(
            ROOT / "driftloop.demo.yaml",
            tmp_path / "home",
            databases,
            LoopPorts(None, None, None),
            progress=lambda line: print(f"[{label}] {line}", flush=True),
            celery=celery,
        )
        print("\n".join(summary_lines(result)))

        # the api-server mounted the driftloop plugin (the demo checks it answers) and says where
        assert result.urls["driftloop page"].endswith("/plugin/driftloop"), result.urls
        # drift: the clean batches pass; the drifting ones, landed together, are checked in one
        # run (in parallel) and all drift, announced in one event
        statuses = [b["status"] for b in result.batches]
        assert statuses == ["no_drift"] * CLEAN_BATCHES + ["drift"] * DRIFTING_BATCHES, statuses
        assert result.drift_events == 1
        # retrain: one, started by the event; it took the newest drift check and merged the
        # others into it, and the challenger beats Production on the gate holdout
        bootstrap, retrain = result.retrain_runs
        assert bootstrap["trigger"] == "bootstrap" and retrain["trigger"] == "drift"
        assert retrain["decision"] == "staging", retrain["reason"]
        assert retrain["challenger_score"] > retrain["production_score"]
        assert (retrain["model_version"], retrain["production_version"]) == ("2", "1")
        engine = sa.create_engine(databases.driftloop)
        resources.callback(engine.dispose)
        with session_scope(engine) as session:
            checks = session.scalars(sa.select(DriftCheck).order_by(DriftCheck.batch_id)).all()
            drifted = [c for c in checks if c.status == "drift"]
            newest, merged = drifted[-1], drifted[:-1]
            assert retrain["drift_check_id"] == newest.id
            assert [c.merged_into for c in merged] == [newest.id] * len(merged)
            assert retrain["details"]["merged_drift_checks"] == sorted(c.id for c in merged)
        # the A/B test: promotion, and it agrees with the statistics stored beside it
        decision = result.decision
        assert decision is not None and decision["decision"] == "promote", result.evaluations
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
        assert tags["driftloop.gate"] == "staging"
        assert tags["driftloop.drift_batch_id"] == str(CLEAN_BATCHES + DRIFTING_BATCHES)
        # merged ids in id order (mapped checks finish, and so are numbered, in any order)
        merged_ids = ",".join(str(i) for i in sorted(c.id for c in merged))
        assert tags["driftloop.merged_drift_check_ids"] == merged_ids, (tags, merged_ids)
        assert tags["driftloop.data_digest"] and tags["driftloop.profile_id"]
    print(f"[{label}] total {time.monotonic() - started:.0f}s")
    return result
