"""The A/B report a person reads: the decision, the numbers per variant with their intervals,
and two plots: the metric per variant as feedback accumulated (with its 95% band), and the
difference with its always-valid interval (the one the decision is made on)."""

from __future__ import annotations

import html
from typing import Any

from driftloop.ab.traffic import VARIANTS
from driftloop.reports.rendering import STYLE, png_base64, pyplot
from driftloop.vocabulary import Role

COLOURS = {Role.PRODUCTION: "#7a9cc6", Role.STAGING: "#e08a3c"}


def render_html(record: dict[str, Any]) -> str:
    metric = record["metric"]
    rows = []
    for variant in VARIANTS:
        stats = record[variant]
        cells = []
        for name, estimate in stats["metrics"].items():
            value = _number(estimate["value"])
            band = (
                f"<br><small>95% CI {_number(estimate['low'])} "
                f"to {_number(estimate['high'])}</small>"
                if estimate["low"] is not None
                else ""
            )
            cells.append(f"<td><b>{name}</b> {value}{band}</td>")
        latency = stats["latency_ms"]
        rows.append(
            f"<tr><td>{variant} v{html.escape(stats['version'])}</td><td>{stats['answered']}</td>"
            f"<td>{stats['with_feedback']}</td>{''.join(cells)}"
            f"<td>{stats['failed_requests']} of {stats['requests']} "
            f"({stats['error_rate']:.2%})</td>"
            f"<td>{_number(latency.get('p50'), 1)} / {_number(latency.get('p99'), 1)}</td></tr>"
        )
    sequential = record.get("sequential")
    test_rows = (
        f"<tr><th>difference ({metric}, positive = Staging better)</th>"
        f"<td>{sequential['difference']:.4f}</td></tr>"
        f"<tr><th>always-valid {1 - sequential['alpha']:.0%} interval</th>"
        f"<td>{sequential['ci_low']:.4f} to {sequential['ci_high']:.4f}</td></tr>"
        f"<tr><th>always-valid p</th>"
        f"<td>{sequential['p_value']:.4f} (alpha {sequential['alpha']:g})</td></tr>"
        f"{_method_rows(sequential)}"
        if sequential
        else "<tr><th>sequential test</th><td>not enough feedback yet</td></tr>"
    )
    move = record.get("move")
    acted = (
        f"<p>Acted: {html.escape(move['action'])}; Production v{move['production_after']} now "
        f"(was v{move['production_before']}).</p>"
        if move
        else ""
    )
    figures = "".join(
        f'<figure><img style="width:520px" alt="{alt}" src="data:image/png;base64,{png}"></figure>'
        for alt, png in _plots(record)
    )
    # a backslash at a line's end continues that line: the page's text has no line break there
    return f"""<!doctype html><html><head><meta charset="utf-8">\
<title>A/B test {record["test_id"]}</title>
<style>{STYLE}</style></head><body>
<h1>A/B test {record["test_id"]}: Production v{html.escape(record["production_version"])} \
against Staging v{html.escape(record["staging_version"])}</h1>
<p class="verdict {record["decision"]}">\
{html.escape(record["decision"])}: {html.escape(record["reason"])}</p>
{acted}
<table><tr><th>started</th><td>{record["started_at"]}</td></tr>\
<tr><th>evaluated</th><td>{record["evaluated_at"]}</td></tr>
<tr><th>decision metric</th><td>{metric}</td></tr>{test_rows}
<tr><th>unmatched feedback (no prediction row with its record id)</th>\
<td>{record.get("unmatched_feedback", 0)}</td></tr></table>
{_paired_section(record.get("paired"), sequential)}
{_srm_section(record.get("srm") or [])}
<h2>Per variant</h2>
<table><tr><th>variant</th><th>answered</th><th>with feedback</th>\
<th colspan="2">metrics</th><th>failed requests</th><th>latency p50 / p99 ms</th></tr>
{"".join(rows)}</table>
<h2>Over time</h2><div class="grid">{figures}</div>
</body></html>"""


def _method_rows(sequential: dict[str, Any]) -> str:
    """The test's method and the clusters behind each mean (reports before issue 27 had
    neither: nothing is shown for them)."""
    if "method" not in sequential:
        return ""
    return (
        f"<tr><th>method</th><td>{html.escape(str(sequential['method']))}</td></tr>"
        f"<tr><th>clusters (clients or requests)</th><td>Production "
        f"{sequential.get('production_clusters')}, Staging "
        f"{sequential.get('staging_clusters')}</td></tr>"
    )


def _paired_section(paired: dict[str, Any] | None, sequential: dict[str, Any] | None) -> str:
    """``ab.design: paired``: the labelled pairs by who was right, and the interval of the
    accuracy difference they give (reports of unpaired tests have no such section)."""
    if not paired:
        return ""
    interval = (
        f"<p>Staging minus Production {sequential['difference']:+.4f}, always-valid "
        f"{1 - sequential['alpha']:.0%} interval {sequential['ci_low']:+.4f} to "
        f"{sequential['ci_high']:+.4f}.</p>"
        if sequential
        else "<p>Not enough pairs for the test yet.</p>"
    )
    off = "" if paired.get("shadow", True) else "<p><b>Shadow mode is off</b>: no new pairs.</p>"
    table = paired.get("table")
    if not table:
        return f"<h2>Paired shadow test: {paired['pairs']} pairs</h2>{interval}{off}"
    return (
        f"<h2>Paired shadow test: {table['pairs']} labelled pairs "
        f"({table['discordance']:.1%} discordant)</h2>"
        "<table><tr><th></th><th>Production right</th><th>Production wrong</th></tr>"
        f"<tr><th>Staging right</th><td>both right: {table['both_right']}</td>"
        f"<td>only Staging right: {table['only_staging']}</td></tr>"
        f"<tr><th>Staging wrong</th><td>only Production right: {table['only_production']}</td>"
        f"<td>both wrong: {table['both_wrong']}</td></tr></table>{interval}{off}"
    )


def _srm_section(checks: list[dict[str, Any]]) -> str:
    """The sample-ratio checks: counts per variant against the split in force."""
    if not checks:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(c['what'])}</td><td>{c['production']}</td><td>{c['staging']}</td>"
        f"<td>{c['expected_staging_share']:.2%}</td><td>{c['p_value']:.3g}</td>"
        f"<td>{'<b>MISMATCH</b>' if c['mismatch'] else 'matches'}</td></tr>"
        for c in checks
    )
    return (
        f"<h2>Sample-ratio mismatch ({html.escape(checks[0]['method'])}, "
        f"alpha {checks[0]['alpha']:g})</h2>"
        "<table><tr><th>counted</th><th>Production</th><th>Staging</th>"
        "<th>split's Staging share</th><th>always-valid p</th><th>verdict</th></tr>"
        f"{rows}</table>"
    )


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _bounds(point: dict[str, Any]) -> tuple[float, float]:
    """A timeline point's band; records written before bands had bounds kept a half-width."""
    value = point["value"]
    if "low" in point:
        low, high = point["low"], point["high"]
        return (value if low is None else low), (value if high is None else high)
    half = point.get("half_width") or 0.0
    return value - half, value + half


def _plots(record: dict[str, Any]) -> list[tuple[str, str]]:
    points = record.get("timeline") or []
    if not points:
        return []
    plt = pyplot()
    metric = record["metric"]
    figure, axes = plt.subplots(figsize=(6.0, 3.2), dpi=100)
    for variant in VARIANTS:
        mine = [(p["at"], p[variant]) for p in points if variant in p]
        if not mine:
            continue
        values = [p[1]["value"] for p in mine]
        lows, highs = zip(*(_bounds(p[1]) for p in mine), strict=True)
        xs = [p[1]["n"] for p in mine]
        axes.plot(
            xs, values, label=f"{variant} v{record[f'{variant}_version']}", color=COLOURS[variant]
        )
        axes.fill_between(xs, lows, highs, color=COLOURS[variant], alpha=0.2)
    axes.set_xlabel("records with feedback (per variant)", fontsize=8)
    axes.set_ylabel(metric, fontsize=8)
    axes.set_title(f"{metric} per variant, 95% band", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    plots = [(f"{metric} per variant", png_base64(figure))]
    difference = [(i, p["difference"]) for i, p in enumerate(points) if "difference" in p]
    if difference:
        figure, axes = plt.subplots(figsize=(6.0, 3.2), dpi=100)
        xs = [i + 1 for i, _ in difference]
        axes.plot(
            xs, [d["value"] for _, d in difference], color="#333", label="Staging - Production"
        )
        axes.fill_between(
            xs,
            [d["low"] for _, d in difference],
            [d["high"] for _, d in difference],
            color="#999",
            alpha=0.3,
            label="always-valid interval",
        )
        axes.axhline(0.0, color="#d9534f", linewidth=1)
        axes.set_xlabel(f"look (of {len(points)}, in feedback order)", fontsize=8)
        axes.set_ylabel(f"{metric} difference (positive: Staging better)", fontsize=7)
        axes.set_title("difference and its always-valid interval", fontsize=9)
        axes.legend(fontsize=7)
        figure.tight_layout()
        plots.append(("difference", png_base64(figure)))
    return plots
