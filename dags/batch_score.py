"""batch_score: answer files of unlabelled rows with the Production version.

Looks in ``scoring/inbox/`` on its schedule (``scoring.schedule``), or scores the one file given
as the ``file`` parameter when triggered; each file is one mapped task: checked, predicted and
written to ``scoring/out/`` chunk by chunk, logged as ``batch`` rows, then moved to
``scoring/done/`` (or ``scoring/quarantine/`` with a reason when no row was usable). Logic lives
in ``driftloop.scoring``; heavy imports happen inside the tasks. One DAG per model
(``driftloop.orchestration.model_dags``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from driftloop.orchestration.dag_support import default_args
from driftloop.orchestration.model_dags import ModelDags, dag_models


def batch_score(model: ModelDags) -> None:
    """The batch_score DAG of one model: its id, schedule and settings from ``model``."""

    @dag(
        dag_id=model.dag_id("batch_score"),
        schedule=model.settings.scoring.schedule,
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
        tags=model.tags,
        doc_md=__doc__,
    )
    def batch_score_dag() -> None:
        @task
        def files_to_score(params=None) -> list[str]:
            """The file given as a parameter, or the inbox's files, oldest first."""
            from driftloop.stages.batch_scoring import waiting_files

            if params and params.get("file"):
                return [params["file"]]
            files = [str(path) for path in waiting_files(model.load())]
            print(f"{len(files)} file(s) waiting" if files else "the inbox is empty")
            return files

        @task(max_active_tis_per_dag=1)
        def score(path: str) -> dict:
            """One file: answers in ``scoring/out/``, the input in ``done/`` or ``quarantine/``."""
            from pathlib import Path

            from driftloop.stages.batch_scoring import score_file

            result = score_file(*model.open(), Path(path))
            print(f"{Path(path).name}: {result.outcome}: {result.scored} of {result.rows} rows")
            if result.reason:
                print(f"reason: {result.reason}")
            return result.summary()

        score.expand(path=files_to_score())

    batch_score_dag()


for model in dag_models(__file__):
    batch_score(model)
