"""The drift report's section on the Production version's performance on the batch."""

from __future__ import annotations

import html
from typing import Any


def render_section(performance: dict[str, Any] | None) -> str:
    """HTML: realized metrics with intervals and the drop test, the estimate before labels,
    prediction drift, and the time the model took, apart from the drift check's."""
    if performance is None:
        return "<h2>Model performance</h2><p>No Production version: nothing predicted.</p>"
    version = html.escape(str(performance.get("model_version")))
    if performance.get("error"):
        return (
            f"<h2>Model performance (v{version})</h2>"
            f"<p class='verdict failed'>not assessed: {html.escape(performance['error'])}</p>"
        )
    parts = [f"<h2>Model performance (Production v{version})</h2><table>"]
    parts.append(
        f"<tr><th>model inference</th><td>{performance['inference_seconds'] * 1000:.1f} ms for "
        f"{performance['rows']} rows (model load {performance.get('model_load_seconds', 0):.2f} s;"
        " not part of the drift check's time)</td></tr>"
    )
    realized = performance.get("realized")
    if realized:
        cells = _metrics(realized["metrics"])
        parts.append(
            f"<tr><th>realized ({realized['rows']} labelled rows, {realized['excluded_rows']} "
            f"left out: trained on)</th><td>{cells}</td></tr>"
            f"<tr><th>drop test</th><td class='{'flag' if realized['decayed'] else ''}'>"
            f"{html.escape(realized['reason'])}</td></tr>"
        )
    else:
        parts.append("<tr><th>realized</th><td>no labels yet</td></tr>")
    estimated = performance.get("estimated")
    if estimated:
        cells = _metrics(estimated["metrics"])
        parts.append(
            f"<tr><th>estimated before labels (CBPE)</th><td class='"
            f"{'flag' if estimated['dropped'] else ''}'>{cells}<br><small>"
            f"{html.escape(estimated['reason'])}</small></td></tr>"
        )
    drift = performance.get("prediction_drift")
    if drift:
        statistics = ", ".join(
            f"{name} {s['value']:.4f} (p {_number(s['p_value'], 3)})"
            for name, s in drift["statistics"].items()
        )
        parts.append(
            f"<tr><th>prediction drift (against out-of-sample predictions)</th><td class='"
            f"{'flag' if drift['drifted'] else ''}'>{'drifted' if drift['drifted'] else 'no'}: "
            f"{statistics}</td></tr>"
        )
    attribution = performance.get("attribution_drift")
    if attribution:
        ranked = sorted(attribution.items(), key=lambda item: -abs(item[1]["change"]))
        cells = "<br>".join(
            f"{html.escape(name)}: {v['reference']:.4f} &rarr; {v['current']:.4f} "
            f"({v['change']:+.4f})"
            for name, v in ranked
        )
        parts.append(
            "<tr><th>attribution drift (mean |SHAP| per feature, training holdout &rarr; "
            f"batch)</th><td><small>{cells}</small></td></tr>"
        )
    day = performance.get("day")
    if day and day.get("realized"):
        name, metric = next(iter(day["realized"]["metrics"].items()))  # the default metric
        parts.append(
            f"<tr><th>day {html.escape(day['day'])} ({day['realized']['rows']} labelled rows)</th>"
            f"<td>{_metrics({name: metric})}: {html.escape(day['realized']['reason'])}</td></tr>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in performance.get("notes", []))
    parts.append("</table>" + (f"<ul>{notes}</ul>" if notes else ""))
    return "".join(parts)


def _metrics(metrics: dict[str, dict[str, float | None]]) -> str:
    """Each metric as "name value (low to high)"."""
    return "; ".join(
        f"{name} {_number(m['value'])} ({_number(m['low'])} to {_number(m['high'])})"
        for name, m in metrics.items()
    )


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
