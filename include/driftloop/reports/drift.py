"""Drift reports a person can read: a JSON record and a standalone HTML page with plots.

The plots compare the reference's bin frequencies (from the profile, so the reference data is
never reloaded) with the batch's, one small chart per column; the table shows per statistic its
value, the threshold calibrated for this batch's size (or the fixed one), the effect-size floor,
the p-value under no drift, and which bar decided. :func:`read_report` reads the JSON of every
format written so far, so older reports stay readable wherever reports are read.
"""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.drift.column import NUMERIC, ColumnProfile
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.verdict import REPORT_FORMAT, DriftVerdict, StatisticTest
from driftloop.reports.performance import render_section
from driftloop.reports.rendering import STYLE, atomic_write, png_base64, pyplot


def write_report(
    verdict: DriftVerdict,
    profile: ReferenceProfile,
    folder: Path,
    stem: str,
    context: dict[str, Any],
    performance: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` under ``folder``; return both paths. With
    ``performance`` (the Production version on the batch), both show it."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {**context, **verdict.to_dict(), "performance": performance}
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    atomic_write(json_path, json.dumps(record, indent=2, default=_json_default))
    atomic_write(html_path, render_html(verdict, profile, context, performance))
    return json_path, html_path


def read_report(path: Path) -> dict[str, Any]:
    """A drift report's JSON in the current format, whatever format it was written in.

    Format 1 (fixed thresholds, before ``format_version``): each statistic gains the fixed
    threshold, a floor of 0 and ``decided_by: fixed``; every column counts as tested. Format 2
    differs from 3 only by lacking the categorical permutation test's details (optional keys),
    and 3 from 4 by lacking ``multivariate`` (read as null: not run), 4 from 5 by lacking
    ``segments_call_drift`` (read as false: segments were reported only).
    """
    record = json.loads(Path(path).read_text())
    record.setdefault("multivariate", None)
    record.setdefault("segments", [])
    record.setdefault("drifted_segments", [])
    record.setdefault("segments_call_drift", False)
    if record.get("format_version", 1) >= REPORT_FORMAT:
        return record
    thresholds = record.get("thresholds") or {}
    for column in [
        *record.get("features", []),
        *([record["target"]] if record.get("target") else []),
    ]:
        column.setdefault("tested", True)
        for name, measured in (column.get("statistics") or {}).items():
            measured.setdefault("threshold", thresholds.get(name))
            measured.setdefault("floor", 0.0)
            measured.setdefault("p_value", None)
            measured.setdefault("level", None)
            measured.setdefault("decided_by", "fixed")
    record.setdefault("mode", "fixed")
    record.setdefault("statistics", list(thresholds))
    record.setdefault("tested_features", [f["name"] for f in record.get("features", [])])
    record["format_version"] = REPORT_FORMAT
    return record


def _json_default(value: Any) -> Any:
    """numpy numbers and booleans in the performance section, as JSON's own."""
    return value.item() if hasattr(value, "item") else str(value)


def render_html(
    verdict: DriftVerdict,
    profile: ReferenceProfile,
    context: dict[str, Any],
    performance: dict[str, Any] | None = None,
) -> str:
    columns = [*verdict.features, *([verdict.target] if verdict.target else [])]
    names = verdict.statistics
    if verdict.mode == "fixed":
        bars = {n: f"fixed threshold {verdict.thresholds[n]:g}" for n in names}
    else:
        bars = {n: f"floor {verdict.floors[n]:g}" for n in names}
    header = "".join(
        f"<th>{html.escape(n)}<br><small>{html.escape(bars[n])}</small></th>" for n in names
    )
    rows = []
    for column in columns:
        cells = []
        for name in names:
            test = column.tests.get(name)
            if test is None:
                cells.append("<td>n/a</td>")
                continue
            cells.append(f'<td class="{"flag" if test.flag else ""}">{_test_text(test)}</td>')
        role = " (target)" if verdict.target is column else ""
        missing = f"{column.missing_share:.1%}" + (" ⚠" if column.missing_alert else "")
        drifted = "yes" if column.drifted else "no" if column.tested else "not tested"
        rows.append(
            f'<tr><td class="{"flag" if column.drifted else ""}">'
            f"{html.escape(column.name)}{role}</td>"
            f"<td>{column.kind}</td><td>{column.count}</td><td>{missing}</td>{''.join(cells)}"
            f"<td>{drifted}</td></tr>"
        )
    figures = "".join(
        f'<figure><img alt="{html.escape(c.name)}" src="data:image/png;base64,'
        f'{_plot(profile.columns[c.name], c.current_probabilities, c.drifted)}">'
        f"<figcaption>{html.escape(c.name)}{' — drifted' if c.drifted else ''}"
        "</figcaption></figure>"
        for c in columns
        if c.current_probabilities
    )
    facts = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in context.items()
    )
    sketch = [c.name for c in profile.columns.values() if not c.exact]
    sketch_note = (
        f"<p>Wasserstein for {', '.join(sketch)} uses the profile's quantile sketch; "
        "its error bound is shown per column in the JSON.</p>"
        if sketch
        else ""
    )
    # a backslash at a line's end continues that line: the page's text has no line break there
    return f"""<!doctype html><html><head><meta charset="utf-8">\
<title>Drift report {html.escape(str(context.get("batch", "")))}</title>
<style>{STYLE}</style></head><body>
<h1>Drift report</h1>
<p class="verdict {verdict.status}">{verdict.status.replace("_", " ")}: \
{len(verdict.drifted_features)} of {len(verdict.tested_features)} tested features drifted
({verdict.drift_share:.0%}{_importance_text(verdict)}; the batch drifts at \
{verdict.required_share:.0%})\
{" — target drift" if verdict.target_drift else ""}</p>
<table>{facts}<tr><th>rows</th><td>{verdict.rows}</td></tr>\
<tr><th>feature rule</th><td>{verdict.feature_rule}</td></tr>
<tr><th>thresholds</th><td>{html.escape(_mode_text(verdict))}</td></tr></table>
<h2>Statistics</h2>
<p><small>Each cell: the statistic's value; the bar it had to clear \
(the calibrated threshold for this
batch's size, or the floor when higher); its p-value under no drift. \
Highlighted: flagged.</small></p>
<table><tr><th>column</th><th>kind</th><th>values</th><th>missing</th>{header}\
<th>drifted</th></tr>{"".join(rows)}</table>
{sketch_note}
{_multivariate_section(verdict)}
{_segments_section(verdict)}
{render_section(performance)}
<h2>Reference against current</h2><div class="grid">{figures}</div>
</body></html>"""


def _segments_section(verdict: DriftVerdict) -> str:
    """Each segment tested on its own, drifted segments first."""
    if not verdict.segments:
        return ""
    rows = "".join(
        f'<tr><td class="{"flag" if t.flagged else ""}">{html.escape(t.column)} = '
        f"{html.escape(t.value)}</td><td>{t.rows}</td><td>{t.reference_rows}</td>"
        f"<td>{t.p_value:.3g}</td><td>"
        + ", ".join(f"{html.escape(f)} (p {p:.2g})" for f, p in t.features[:3])
        + f"</td><td>{'yes' if t.flagged else 'no'}</td></tr>"
        for t in verdict.segments
    )
    role = (
        "A drifted segment called this batch drift (drift.segment_retrain)."
        if verdict.segments_call_drift
        else "Reported only, unless drift.segment_retrain lets a segment call drift."
    )
    return (
        "<h2>Segments</h2><p><small>Each segment against the reference's rows of that segment"
        " (Kolmogorov-Smirnov, chi-square); its p-value is the smallest of its features' times "
        "their number; flagged at the false-discovery rate across segments. "
        f"{role}</small></p><table><tr><th>segment</th><th>rows</th><th>reference rows</th>"
        f"<th>p-value</th><th>features</th><th>drifted</th></tr>{rows}</table>"
    )


def _importance_text(verdict: DriftVerdict) -> str:
    if verdict.weighting != "importance" or verdict.importance_share is None:
        return ""
    return f", {verdict.importance_share:.0%} of the Production version's importance"


def _multivariate_section(verdict: DriftVerdict) -> str:
    """The features tested together: the value, the bar, and who moved most."""
    test = verdict.multivariate
    if test is None:
        return ""
    movers = ", ".join(f"{html.escape(name)} ({share:.0%})" for name, share in test.contributions)
    role = (
        "may call drift on its own (drift.multivariate_retrain, or a traffic window)"
        if verdict.multivariate_calls_drift
        else "reported only; the verdict is the per-feature one"
    )
    grew = f" Grew most: {movers}." if movers else ""
    tail = ""
    if test.tail is not None:  # served traffic: rows far past the reference rows' extremes
        past = (
            "rebuild worse than the held-out rows' top"
            if test.tail.feature is None
            else f"have {html.escape(test.tail.feature)} "
            f"{'above' if test.tail.side == 'high' else 'below'} {test.tail.bar:.4g}, the "
            f"reference rows' {'top' if test.tail.side == 'high' else 'bottom'}"
        )
        tail = (
            f" Tail: {test.tail.count} of {test.tail.rows} rows ({test.tail.share:.2%}) {past} "
            f"{test.tail.expected_share:.2%} (p {test.tail.p_value:.3g}, beta-binomial; the "
            f"most telling of {test.tail.tests} tail tests, which share half the level); p "
            "above is twice the smaller of the rank test's and the tail tests' (Bonferroni)."
        )
    return (
        "<h2>Features together</h2>"
        f'<p class="{"flag" if test.flag else ""}">PCA reconstruction error: mean '
        f"{test.mean_error:.4g} against {test.reference_mean_error:.4g} on held-out reference "
        f"rows ({test.increase:+.1%}); p {test.p_value:.3g} (one-sided Mann-Whitney over "
        f"{test.rows} rows) against level {test.level:g}, floor +{test.floor:.0%}: "
        f"{'flagged' if test.flag else 'not flagged'}; {role}.{grew}{tail}</p>"
    )


def _mode_text(verdict: DriftVerdict) -> str:
    if verdict.mode == "fixed":
        return "fixed (drift.thresholds): the same at every batch size"
    return (
        f"calibrated to each feature's number of values; {verdict.false_alarm_rate:g} false-alarm"
        f" rate per feature, shared by its statistics; features with fewer than "
        f"{verdict.min_rows} values are not tested"
    )


def _test_text(test: StatisticTest) -> str:
    """Value, the bar that decided, and the p-value, for one table cell."""
    bar = (
        f"threshold {test.threshold:.4g}"
        if test.decided_by != "floor"
        else f"floor {test.floor:.4g} (threshold {test.threshold:.3g})"
    )
    p_value = "" if test.p_value is None else f"<br><small>p {test.p_value:.3g}</small>"
    distance = test.measurement.details.get("distance")
    raw = "" if distance is None else f"<br><small>raw {distance:.4g}</small>"
    unseen = test.measurement.details.get("unseen_share")
    if unseen is not None:  # the categorical permutation test: levels the reference lacks
        raw += (
            f"<br><small>unseen {unseen:.1%}; new level "
            f"p {test.measurement.details['new_level_p_value']:.3g}</small>"
        )
    if test.sketch_bound is not None:  # a sketched batch: the value is known within this
        raw += f"<br><small>sketch &plusmn;{test.sketch_bound:.3g}</small>"
    return f"{test.value:.4f}<br><small>{'&gt;' if test.flag else 'vs'} {bar}</small>{p_value}{raw}"


def _plot(column: ColumnProfile, current: list[float], drifted: bool) -> str:
    """A bar chart of reference and current bin frequencies, as base64 PNG."""
    plt = pyplot()
    if column.kind == NUMERIC:
        edges = column.bin_edges
        labels = [f"<{edges[0]:.3g}"] + [
            f"{a:.3g} to {b:.3g}" for a, b in itertools.pairwise(edges)
        ]
        labels.append(f"≥{edges[-1]:.3g}")
        labels = labels[: len(column.probabilities)]
    else:
        labels = [*column.levels, "(unseen)"]
    positions = np.arange(len(labels))
    figure, axes = plt.subplots(figsize=(4.0, 2.6), dpi=100)
    axes.bar(positions - 0.2, column.probabilities, width=0.4, label="reference", color="#7a9cc6")
    axes.bar(
        positions + 0.2,
        current,
        width=0.4,
        label="current",
        color="#d9534f" if drifted else "#5cb85c",
    )
    axes.set_xticks(positions, labels, rotation=60, ha="right", fontsize=6)
    axes.set_ylabel("share", fontsize=7)
    axes.tick_params(axis="y", labelsize=6)
    axes.set_title(column.name, fontsize=8)
    axes.legend(fontsize=6)
    figure.tight_layout()
    return png_base64(figure)
