"""Drift reports a person can read: a JSON record and a standalone HTML page with plots.

The plots compare the reference's bin frequencies (from the profile, so the reference data is
never reloaded) with the batch's, one small chart per column; the table shows every statistic
next to its threshold.
"""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.drift.engine import DriftVerdict
from driftloop.drift.profile import NUMERIC, ColumnProfile, ReferenceProfile
from driftloop.reporting import STYLE, atomic_write, png_base64, pyplot


def write_report(
    verdict: DriftVerdict,
    profile: ReferenceProfile,
    folder: Path,
    stem: str,
    context: dict[str, Any],
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` under ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {**context, **verdict.to_dict()}
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    atomic_write(json_path, json.dumps(record, indent=2))
    atomic_write(html_path, render_html(verdict, profile, context))
    return json_path, html_path


def render_html(verdict: DriftVerdict, profile: ReferenceProfile, context: dict[str, Any]) -> str:
    columns = [*verdict.features, *([verdict.target] if verdict.target else [])]
    names = list(verdict.thresholds)
    header = "".join(
        f"<th>{html.escape(n)}<br><small>threshold {verdict.thresholds[n]:g}</small></th>"
        for n in names
    )
    rows = []
    for column in columns:
        cells = []
        for name in names:
            measurement = column.measurements.get(name)
            if measurement is None:
                cells.append("<td>n/a</td>")
                continue
            extra = measurement.details.get("distance")
            text = f"{measurement.value:.4f}" + (
                f"<br><small>raw {extra:.4g}</small>" if extra is not None else ""
            )
            cells.append(f'<td class="{"flag" if column.flags.get(name) else ""}">{text}</td>')
        role = " (target)" if verdict.target is column else ""
        missing = f"{column.missing_share:.1%}" + (" ⚠" if column.missing_alert else "")
        rows.append(
            f'<tr><td class="{"flag" if column.drifted else ""}">{html.escape(column.name)}{role}</td>'
            f"<td>{column.kind}</td><td>{column.count}</td><td>{missing}</td>{''.join(cells)}"
            f"<td>{'yes' if column.drifted else 'no'}</td></tr>"
        )
    figures = "".join(
        f'<figure><img alt="{html.escape(c.name)}" src="data:image/png;base64,{_plot(profile.columns[c.name], c.current_probabilities, c.drifted)}">'
        f"<figcaption>{html.escape(c.name)}{' — drifted' if c.drifted else ''}</figcaption></figure>"
        for c in columns
        if c.current_probabilities
    )
    facts = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in context.items()
    )
    sketch = [c.name for c in profile.columns.values() if not c.exact]
    sketch_note = (
        f"<p>Wasserstein for {', '.join(sketch)} uses the profile's quantile sketch; its error bound is shown per column in the JSON.</p>"
        if sketch
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift report {html.escape(str(context.get("batch", "")))}</title>
<style>{STYLE}</style></head><body>
<h1>Drift report</h1>
<p class="verdict {verdict.status}">{verdict.status.replace("_", " ")}: {len(verdict.drifted_features)} of {len(verdict.features)} features drifted
({verdict.drift_share:.0%}; the batch drifts at {verdict.required_share:.0%}){" — target drift" if verdict.target_drift else ""}</p>
<table>{facts}<tr><th>rows</th><td>{verdict.rows}</td></tr><tr><th>feature rule</th><td>{verdict.feature_rule}</td></tr></table>
<h2>Statistics</h2>
<table><tr><th>column</th><th>kind</th><th>values</th><th>missing</th>{header}<th>drifted</th></tr>{"".join(rows)}</table>
{sketch_note}
<h2>Reference against current</h2><div class="grid">{figures}</div>
</body></html>"""


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
