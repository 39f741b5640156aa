"""batch_score: answer files of unlabelled rows with the Production version.

Looks in ``scoring/inbox/`` on its schedule (``scoring.schedule``), or scores the one file given
as the ``file`` parameter when triggered; each file is one mapped task: checked, predicted and
written to ``scoring/out/`` chunk by chunk, logged as ``batch`` rows, then moved to
``scoring/done/`` (or ``scoring/quarantine/`` with a reason when no row was usable). Logic lives
in ``driftloop.scoring``; heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from driftloop.config import dag_config, load_settings

CONFIG = dag_config(__file__)


@dag(
    dag_id="batch_score",
    schedule=load_settings(CONFIG).scoring.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
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
        from driftloop.scoring.batch import waiting_files

        if params and params.get("file"):
            return [params["file"]]
        files = [str(path) for path in waiting_files(load_settings(CONFIG))]
        print(f"{len(files)} file(s) waiting" if files else "the inbox is empty")
        return files

    @task(max_active_tis_per_dag=1)
    def score(path: str) -> dict:
        """One file: answers in ``scoring/out/``, the input in ``done/`` or ``quarantine/``."""
        from pathlib import Path

        from driftloop.database import open_database
        from driftloop.scoring.batch import score_file

        settings = load_settings(CONFIG)
        result = score_file(settings, open_database(settings), Path(path))
        print(f"{Path(path).name}: {result.outcome}: {result.scored} of {result.rows} rows")
        if result.reason:
            print(f"reason: {result.reason}")
        return result.summary()

    score.expand(path=files_to_score())


batch_score()
