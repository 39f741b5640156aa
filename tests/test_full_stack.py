"""The whole loop on real services and PostgreSQL with the LocalExecutor: what `make demo`
runs, asserted step by step (tests/support/full_loop.py; on Celery: tests/test_celery_stack.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support.full_loop import run_and_check_loop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def test_drift_retrain_staging_ab_promotion_on_real_services(tmp_path: Path, monkeypatch) -> None:
    result = run_and_check_loop(tmp_path, monkeypatch)
    assert result.celery_tasks == {}  # the LocalExecutor: no Celery worker involved
    assert {ti["queue"] for ti in result.task_instances} <= {"default", "training"}
