"""batch_score: answer files of unlabelled rows with the Production version.

Looks in ``scoring/inbox/`` on its schedule (``scoring.schedule``), or scores the one file given
as the ``file`` parameter when triggered; each file is one mapped task: checked, predicted and
written to ``scoring/out/`` chunk by chunk, logged as ``batch`` rows, then moved to
``scoring/done/`` (or ``scoring/quarantine/`` with a reason when no row was usable). Logic lives
in ``driftloop.scoring``; heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from driftloop.orchestration.dag_support import dag_settings, default_args, open_task
from driftloop.settings_loader import load_settings

CONFIG, SETTINGS = dag_settings(__file__)


@dag(
    dag_id="batch_score",
    schedule=SETTINGS.scoring.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    params={
        "file": Param(
            None,
            type=["null", "string"],
            description="A file to score; empty: every file waiting in scoring/inbox/.",
        )
    },
    tags=["driftloop"],
    doc_md=__doc__,
)
def batch_score() -> None:
    @task
    def files_to_score(params=None) -> list[str]:
        """The file given as a parameter, or the inbox's files, oldest first."""
        from driftloop.stages.batch_scoring import waiting_files

        if params and params.get("file"):
            return [params["file"]]
        files = [str(path) for path in waiting_files(load_settings(CONFIG))]
        print(f"{len(files)} file(s) waiting" if files else "the inbox is empty")
        return files

    @task(max_active_tis_per_dag=1)
    def score(path: str) -> dict:
        """One file: answers in ``scoring/out/``, the input in ``done/`` or ``quarantine/``."""
        from pathlib import Path

        from driftloop.stages.batch_scoring import score_file

        result = score_file(*open_task(CONFIG), Path(path))
        print(f"{Path(path).name}: {result.outcome}: {result.scored} of {result.rows} rows")
        if result.reason:
            print(f"reason: {result.reason}")
        return result.summary()

    score.expand(path=files_to_score())


batch_score()
