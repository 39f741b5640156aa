"""A drift check (with its HTML report) and a retrain run written straight to the database, for
tests that read the loop (the plugin's page) rather than run it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from driftloop.storage import Batch, DriftCheck, RetrainRun, session_scope


def drift_checks(engine: sa.Engine, model: str, folder: Path, shares: list[float]) -> list[int]:
    """One accepted batch of ``model`` and one check per share (drift from 0.5 up), oldest
    first, each with a small HTML report; return the check ids."""
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.now(UTC) - timedelta(hours=len(shares))
    ids = []
    with session_scope(engine) as session:
        for i, share in enumerate(shares):
            at = start + timedelta(hours=i)
            batch = Batch(
                model_name=model,
                name=f"batch-{i:03d}.csv",
                digest=f"{i:064d}",
                path=str(folder / f"batch-{i:03d}.csv"),
                status="accepted",
                batch_time=at,
            )
            session.add(batch)
            session.flush()
            drifted = ["alcohol", "pH"] if share >= 0.5 else []
            report = folder / f"drift-{i:03d}.html"
            report.write_text(f"<html><body><h1>drift report of batch {i}</h1></body></html>")
            check = DriftCheck(
                model_name=model,
                batch_id=batch.id,
                status="drift" if drifted else "no_drift",
                drift_share=share,
                drifted_features=drifted,
                html_path=str(report),
                created_at=at,
            )
            session.add(check)
            session.flush()
            ids.append(check.id)
    return ids


def retrain_run(engine: sa.Engine, model: str, version: str, drift_check_id: int) -> int:
    """A retrain of ``model`` whose gate sent ``version`` to Staging."""
    with session_scope(engine) as session:
        run = RetrainRun(
            model_name=model,
            trigger="drift",
            drift_check_id=drift_check_id,
            decision="staging",
            reason="non-inferior at the margin",
            model_version=version,
            metric="accuracy",
            challenger_score=0.71,
            production_score=0.66,
        )
        session.add(run)
        session.flush()
        return run.id
