"""The driftloop page inside Airflow: the overview (``driftloop.ui.overview``) as one HTML page.

Server-rendered, no script and no external asset, so it works inside Airflow's iframe and in a
test's headless browser alike. Every value is escaped; links to reports are by id under the
plugin's own prefix (``base``), so no prediction server is needed to read them.
"""

from __future__ import annotations

from html import escape
from typing import Any

from driftloop.reports.rendering import STYLE

# A backslash at a line's end continues that line: the text has no line break there.
PAGE_STYLE = (
    STYLE
    + """
body{margin:1rem}h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}\
.card{border:1px solid #ccc;border-radius:6px;padding:.6rem 1rem}
.muted{color:#777}.pending{background:#fff4d6}.approved{background:#e3f6e5}
.declined,.expired,.superseded{background:#eee}span.text{display:block;text-align:left;max-width:40rem}
"""
)


def render_page(view: dict[str, Any], base: str, home: str | None = None) -> str:
    """One model's page; ``base`` is where its routes answer (``/driftloop``, or
    ``/driftloop/models/<name>`` in a deployment of several models, whose overview ``home``
    is linked at the top)."""
    back = f"<p><a href='{_e(home)}'>&larr; all models</a></p>" if home else ""
    sections = [
        _versions(view),
        _drift(view["drift"], base),
        _ab(view["ab"], base),
        _approvals(view["approvals"]),
        _audit(view["audit"]),
        _retrains(view["retrains"]),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>driftloop</title>"
        f"<style>{PAGE_STYLE}</style></head><body>"
        f"{back}<h1>driftloop: {_e(view['model'])}</h1>{''.join(sections)}"
        f"<p class='muted'>JSON: <a href='{base}/api/overview'>{base}/api/overview</a></p>"
        "</body></html>"
    )


def render_models(rows: list[dict[str, Any]], base: str) -> str:
    """The overview of a deployment's models (``driftloop.ui.models``' rows as dicts): one row
    each, linked to the model's own page under ``{base}/models/<name>/``."""
    cells = []
    for row in rows:
        name = _e(row["model"])
        check, test = row["drift"], row["ab"]
        drift = (
            "<span class='muted'>none yet</span>"
            if check is None
            else f"<span class='verdict {_e(check['status'])}'>{_e(check['status'])}</span> "
            f"<span class='muted'>{_e(check['created_at'])}, {_e(check['batch'])}</span>"
        )
        ab = (
            "<span class='muted'>none</span>"
            if test is None
            else f"<span class='verdict {_e(test['status'])}'>{_e(test['status'])}</span> "
            f"#{_e(test['id'])}: Staging v{_e(test['staging_version'])} vs Production "
            f"v{_e(test['production_version'])}"
        )
        cells.append(
            (
                f"<a href='{base}/models/{name}/' data-testid='model-link'>{name}</a>",
                _version(row["production"]),
                _version(row["staging"]),
                drift,
                ab,
                f"<span class='text flag'>{_e(row['error'])}</span>" if row["error"] else "-",
            )
        )
    head = ("model", "Production", "Staging", "last drift verdict", "A/B test", "problem")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>driftloop</title>"
        f"<style>{PAGE_STYLE}</style></head><body>"
        f"<h1>driftloop: {len(rows)} models</h1>"
        f"<div data-testid='models'>{_table(head, cells)}</div>"
        f"<p class='muted'>JSON: <a href='{base}/api/models'>{base}/api/models</a></p>"
        "</body></html>"
    )


def _version(number: str | None) -> str:
    return "<span class='muted'>none</span>" if number is None else f"v{_e(number)}"


def _versions(view: dict[str, Any]) -> str:
    cards = []
    for role in ("production", "staging"):
        info = view["versions"].get(role)
        if info is None:
            body = "<span class='muted'>none</span>"
        else:
            number = f"v{_e(info['version'])}"
            if info.get("url"):
                number = f"<a href='{_e(info['url'])}' target='_blank'>{number}</a>"
            body = f"<b data-testid='{role}-version'>{number}</b>"
            if info.get("gate"):
                body += f" <span class='muted'>gate: {_e(info['gate'])}</span>"
        cards.append(f"<div class='card'><div>{role.capitalize()}</div>{body}</div>")
    traffic = view["traffic"]
    cards.append(
        "<div class='card'><div>Traffic to Staging</div>"
        f"<b data-testid='staging-weight'>{traffic['staging_weight']:.0%}</b>"
        f" <span class='muted'>shadow {'on' if traffic['shadow'] else 'off'}</span></div>"
    )
    if view["versions"].get("error"):
        cards.append(f"<div class='card flag'>{_e(view['versions']['error'])}</div>")
    ui = view.get("mlflow_ui")
    link = f"<p><a href='{_e(ui)}' target='_blank'>MLflow UI</a></p>" if ui else ""
    return f"<h2>Versions</h2><div class='cards'>{''.join(cards)}</div>{link}"


def _drift(drift: dict[str, Any], base: str) -> str:
    rows = [
        (
            _e(check["created_at"]),
            _e(check["batch"]),
            f"<span class='verdict {_e(check['status'])}' data-testid='drift-verdict'>"
            f"{_e(check['status'])}</span>",
            _num(check["drift_share"], 2),
            _e(", ".join(check["drifted_features"]) or "-"),
            f"<a href='{base}/reports/drift/{check['id']}'>report</a>"
            if check["has_report"]
            else "-",
        )
        for check in drift["checks"]
    ]
    table = _table(
        ("checked", "batch", "verdict", "drift share", "drifted features", "report"), rows
    )
    return (
        f"<h2>Drift</h2>{table}<h3>Drift share over time</h3>"
        f"{_share_chart(drift['share_over_time'])}"
    )


def _share_chart(points: list[dict[str, Any]]) -> str:
    """An inline SVG line of the drift share per check (0 to 1), drifted checks marked red."""
    if not points:
        return "<p class='muted'>no drift check has measured a share yet</p>"
    width, height, pad = 640, 160, 20
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    xy = [
        (pad + i * step, height - pad - (height - 2 * pad) * min(max(p["share"], 0.0), 1.0))
        for i, p in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' "
        f"fill='{'#c0392b' if p['status'] == 'drift' else '#2e7d32'}'>"
        f"<title>{_e(p['at'])}: {p['share']:.2f}</title></circle>"
        for (x, y), p in zip(xy, points, strict=True)
    )
    return (
        f"<svg data-testid='drift-share' width='{width}' height='{height}' role='img' "
        f"aria-label='drift share per check'>"
        f"<rect width='{width}' height='{height}' fill='#fafafa'/>"
        f"<polyline points='{line}' fill='none' stroke='#555'/>{dots}</svg>"
    )


def _ab(ab: dict[str, Any] | None, base: str) -> str:
    if ab is None:
        return "<h2>A/B test</h2><p class='muted'>no A/B test yet</p>"
    head = (
        f"<p>Test {ab['id']}: Production v{_e(ab['production_version'])} vs Staging "
        f"v{_e(ab['staging_version'])}, <b>{_e(ab['status'])}</b> since {_e(ab['started_at'])}"
        f" (approval: {_e(ab['approval'])})</p>"
    )
    latest, guards = ab["latest"], ab["guardrails"]
    numbers = "<p class='muted'>not evaluated yet</p>"
    if latest is not None:
        rows = [
            (
                f"{role} v{_e(v['version'])}",
                _e(v["requests"]),
                f"<span data-testid='{role}-feedback'>{_e(v['with_feedback'])}</span>",
                f"{_num(v['metric'])} [{_num(v['low'])}, {_num(v['high'])}]",
                f"{_pct(v['error_rate'])} (max {guards['max_error_rate']:.1%})",
                f"{_num(v['p99_ms'], 0)} ms (max {guards['max_p99_ms']:g})",
            )
            for role, v in latest["variants"].items()
        ]
        numbers = _table(
            (
                "variant",
                "requests",
                "with feedback",
                f"{_e(latest['metric'])} [95% interval]",
                "failed share",
                "p99",
            ),
            rows,
        )
        seq = latest.get("sequential") or {}
        numbers += (
            f"<p>Always-valid p-value <b data-testid='ab-p-value'>{_num(latest['p_value'])}</b>; "
            f"difference {_num(seq.get('difference'))} "
            f"[{_num(seq.get('ci_low'))}, {_num(seq.get('ci_high'))}] "
            f"(guardrails apply from {guards['min_requests']} Staging requests)</p>"
        )
        numbers += _sample_ratio(latest.get("srm") or [])
    decisions = _table(
        ("looked", "decision", "reason", "p", "records", "report"),
        [
            (
                _e(d["created_at"]),
                f"<span class='verdict {_e(d['decision'])}'>{_e(d['decision'])}</span>",
                _text(d["reason"]),
                _num(d["p_value"]),
                "/".join(str(n) for n in d["samples"]),
                f"<a href='{base}/reports/ab/{d['id']}'>report</a>" if d["has_report"] else "-",
            )
            for d in ab["decisions"]
        ],
    )
    return f"<h2>A/B test</h2>{head}{numbers}<h3>Decision history</h3>{decisions}"


def _sample_ratio(checks: list[dict[str, Any]]) -> str:
    """One line per sample-ratio check; a mismatch says that the test cannot decide."""
    if not checks:
        return ""
    mismatched = any(c["mismatch"] for c in checks)
    verdict = (
        "<b class='verdict rejected'>sample-ratio mismatch: no decision while the counts do "
        "not match the split</b>"
        if mismatched
        else "the counts match the split"
    )
    lines = "".join(f"<li>{_text(c['sentence'])}</li>" for c in checks)
    return f"<p data-testid='ab-srm'>Sample-ratio check: {verdict}</p><ul>{lines}</ul>"


def _approvals(approvals: list[dict[str, Any]]) -> str:
    rows = [
        (
            _e(a["requested_at"]),
            f"{_e(a['decision'])} v{_e(a['staging_version'])}",
            f"<span class='{_e(a['status'])}'>{_e(a['status'])}</span>",
            _e(a.get("expires_at") or "-"),
            _e(a["responded_by"] or "-"),
            _text(a["comment"] or "-"),
            _text(a.get("late_answer") or "-"),
            _e(a["dag_run_id"] or "-"),
        )
        for a in approvals
    ]
    if not rows:
        return ""
    head = (
        "asked",
        "decision",
        "status",
        "answer by",
        "answered by",
        "comment",
        "late answer",
        "Airflow run",
    )
    return f"<h2>Approvals</h2>{_table(head, rows)}"


def _audit(records: list[dict[str, Any]]) -> str:
    rows = [
        (
            _e(r["created_at"]),
            _e(r["action"]),
            f"{_e(r['production_before'] or '-')} &rarr; {_e(r['production_after'] or '-')}",
            _e(r["staging_before"] or "-"),
            _e(r["actor"]),
            _text(r["reason"]),
        )
        for r in records
    ]
    head = ("when", "action", "Production", "Staging was", "by", "why")
    return f"<h2>Audit log</h2>{_table(head, rows)}"


def _retrains(runs: list[dict[str, Any]]) -> str:
    rows = [
        (
            _e(r["created_at"]),
            _e(r["trigger"]),
            f"<span data-testid='retrain-decision'>{_e(r['decision'])}</span>",
            f"v{_e(r['model_version'])}" if r["model_version"] else "-",
            (
                f"{_num(r['challenger_score'])} vs {_num(r['production_score'])} "
                f"({_e(r['metric'] or '-')})"
            ),
            _text(r["reason"]),
        )
        for r in runs
    ]
    head = ("when", "trigger", "gate decision", "version", "challenger vs Production", "why")
    return f"<h2>Retraining</h2>{_table(head, rows)}"


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "<p class='muted'>none yet</p>"
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _text(value: Any) -> str:
    return f"<span class='text'>{_e(value)}</span>"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
