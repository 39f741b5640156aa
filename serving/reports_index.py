"""``GET /reports/``: the drift and A/B reports, newest first, with their verdicts.

The list comes from the database (``drift_checks`` and ``ab_evaluations``), not from the
folder, so each line carries its verdict; a link is shown only for a report file that lies
under the reports folder, the only one the server serves.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from driftloop.reports.rendering import STYLE
from driftloop.storage import ABEvaluation, ABTest, Batch, DriftCheck, session_scope

LIMIT = 200  # per kind; the CLI (`drift reports`, `ab reports`) reaches further back


@dataclass(frozen=True)
class ReportEntry:
    """One report as the index shows it."""

    kind: str  # drift or ab
    created_at: datetime
    verdict: str
    subject: str
    link: str | None


def report_entries(
    engine: sa.Engine, model: str, reports_dir: Path, limit: int = LIMIT
) -> list[ReportEntry]:
    """``model``'s drift checks and A/B evaluations, newest first."""
    with session_scope(engine) as session:
        checks = session.execute(
            sa.select(DriftCheck, Batch.name)
            .join(Batch, Batch.id == DriftCheck.batch_id)
            .where(DriftCheck.model_name == model)
            .order_by(DriftCheck.id.desc())
            .limit(limit)
        ).all()
        evaluations = session.execute(
            sa.select(ABEvaluation, ABTest)
            .join(ABTest, ABTest.id == ABEvaluation.test_id)
            .where(ABTest.model_name == model)
            .order_by(ABEvaluation.id.desc())
            .limit(limit)
        ).all()
    entries = [
        ReportEntry(
            "drift",
            check.created_at,
            check.status,
            f"batch {batch_name}"
            + (f": {len(check.drifted_features)} drifted" if check.drifted_features else ""),
            _link(check.html_path, reports_dir),
        )
        for check, batch_name in checks
    ] + [
        ReportEntry(
            "ab",
            evaluation.created_at,
            evaluation.decision,
            f"test {test.id}: version {test.production_version} vs {test.staging_version}",
            _link(evaluation.html_path, reports_dir),
        )
        for evaluation, test in evaluations
    ]
    return sorted(entries, key=lambda e: e.created_at, reverse=True)


def _link(path: str | None, reports_dir: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(reports_dir.resolve()).as_posix()
    except ValueError:  # written under another home: not served here
        return None


def render_index(entries: list[ReportEntry]) -> str:
    """A standalone HTML page listing ``entries``."""
    rows = "".join(
        "<tr><td>{when}</td><td>{kind}</td><td><span class='verdict {verdict}'>{verdict}</span>"
        "</td><td>{subject}</td><td>{link}</td></tr>".format(
            when=html.escape(e.created_at.strftime("%Y-%m-%d %H:%M:%S")),
            kind="drift" if e.kind == "drift" else "A/B",
            verdict=html.escape(e.verdict),
            subject=html.escape(e.subject),
            link=(
                f"<a href='{html.escape(e.link, quote=True)}'>report</a>" if e.link else "no page"
            ),
        )
        for e in entries
    )
    body = (
        "<table><tr><th>when (UTC)</th><th>kind</th><th>verdict</th><th>what</th><th></th></tr>"
        f"{rows}</table>"
        if entries
        else "<p>No reports yet: drift checks and A/B evaluations write them.</p>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>driftloop reports</title>"
        f"<style>{STYLE}</style></head><body><h1>Reports</h1>{body}</body></html>"
    )
