"""The calibration benchmark's report: the Markdown tables, the machine and the command.

Why: the figures only mean something beside their targets, intervals and the conditions they
were measured in, so every table prints its target and whether it was met, the rates their
95% Clopper-Pearson bound, and the report the machine, its load and the exact command.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.calibration_data import REFERENCE_EVERY, Population, PowerCell
from support.calibration_evidently import evidently_methods, evidently_tally
from support.calibration_tally import Tally

TARGET_FALSE_ALARMS = 0.015
TARGET_POWER = 0.95
TARGET_TRIVIA = 0.05


def pct(value: float) -> str:
    """A share as a percentage; '-' where there was nothing to divide by."""
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def upper_bound(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate."""
    from scipy.stats import beta

    if trials == 0:
        return math.nan
    if successes >= trials:
        return 1.0
    return float(beta.ppf(confidence, successes + 1, trials - successes))


def lower_bound(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound of a rate."""
    from scipy.stats import beta

    if trials == 0:
        return math.nan
    if successes <= 0:
        return 0.0
    return float(beta.ppf(1 - confidence, successes, trials - successes + 1))


def verdict(ok: bool) -> str:
    """Whether a target was met; a miss in bold, so it is seen."""
    return "yes" if ok else "**no**"


def false_alarm_table(
    data: list[Population],
    sizes: list[int],
    ours: dict[tuple[str, int], Tally],
    theirs: dict[str, list[dict[str, Any]]],
) -> list[str]:
    """Per data set and batch size: both tools' false alarms on clean batches."""
    lines = [
        "| data set | batch rows | batches | driftloop: called drift (95% upper) "
        "| driftloop: features flagged per batch | features tested (mean of) "
        "| insufficient data | met | Evidently batches | Evidently: called drift "
        "| Evidently: features flagged per batch | full Report agrees |",
        "| --- |" + " ---: |" * 11,
    ]
    for population in data:
        width = len(population.frame.columns)
        for rows in sizes:
            t = ours[population.name, rows]
            ok = t.drift_share() <= TARGET_FALSE_ALARMS and t.flagged_share() <= TARGET_FALSE_ALARMS
            records = theirs.get(f"{population.name}:{rows}", [])
            e, reports, agreed, _ = evidently_tally(records)
            cells = [
                population.name,
                str(rows),
                str(t.batches),
                f"{pct(t.drift_share())} ({pct(upper_bound(t.drift, t.decided))})",
                pct(t.flagged_share()),
                f"{t.tested_sum / t.decided:.1f} of {width}" if t.decided else "-",
                str(t.insufficient),
                verdict(ok) if t.decided else "-",
                str(e.batches),
                pct(e.drift_share()),
                pct(e.flagged_share()),
                f"{agreed} of {reports}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def worst_features(
    data: list[Population], sizes: list[int], ours: dict[tuple[str, int], Tally]
) -> list[str]:
    """Per cell, the features driftloop flags most often on clean batches."""
    lines = []
    for population in data:
        for rows in sizes:
            t = ours[population.name, rows]
            top = sorted(t.per_feature.items(), key=lambda item: -item[1])[:3]
            if top:
                named = ", ".join(f"{name} {pct(count / t.decided)}" for name, count in top)
                lines.append(f"- {population.name}, {rows} rows: {named}")
    return lines


def power_table(
    cells: list[PowerCell], ours: dict[str, Tally], theirs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Per planted shift (and unshifted twin): how often each tool flagged it."""
    lines = [
        "| planted shift | feature | batch rows / reference rows | batches "
        "| driftloop flagged (95% lower) | target | met | Evidently batches | Evidently flagged |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for cell in cells:
        if cell.dataset_verdict:
            continue
        t = ours.get(cell.key, Tally())
        e = evidently_tally(theirs.get(cell.key, []))[0]
        for column in cell.columns:
            share = t.feature_share(column.name)
            trivia = cell.key.startswith("trivia")
            if column.shift and trivia:
                target, ok = f"<= {pct(TARGET_TRIVIA)}", share <= TARGET_TRIVIA
            elif column.shift:
                target, ok = f">= {pct(TARGET_POWER)}", share >= TARGET_POWER
            else:
                target, ok = "(no shift)", True
            count = t.per_feature.get(column.name, 0)
            cells_ = [
                column.shift or "none (twin)",
                column.name,
                f"{cell.rows:,} / {cell.reference_rows:,}",
                str(t.decided),
                f"{pct(share)} ({pct(lower_bound(count, t.decided))})",
                target,
                verdict(ok) if column.shift and t.decided else "-",
                str(e.decided),
                pct(e.feature_share(column.name)),
            ]
            lines.append("| " + " | ".join(cells_) + " |")
    return lines


def dataset_table(
    cells: list[PowerCell], ours: dict[str, Tally], theirs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Dataset verdicts on 3 shifted features of 10, against the power target."""
    lines = [
        "| case | batch rows / reference rows | batches | driftloop called drift "
        "| target | met | driftloop features flagged per batch | Evidently batches "
        "| Evidently called drift (its drift_share 0.5) | Evidently features flagged per batch |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for cell in cells:
        if not cell.dataset_verdict:
            continue
        t = ours.get(cell.key, Tally())
        e = evidently_tally(theirs.get(cell.key, []))[0]
        shift = cell.columns[0].shift
        cells_ = [
            f"3 of 10 shifted ({shift})",
            f"{cell.rows:,} / {cell.reference_rows:,}",
            str(t.decided),
            pct(t.drift_share()),
            f">= {pct(TARGET_POWER)}",
            verdict(t.drift_share() >= TARGET_POWER) if t.decided else "-",
            pct(t.flagged_share()),
            str(e.decided),
            pct(e.drift_share()),
            pct(e.flagged_share()),
        ]
        lines.append("| " + " | ".join(cells_) + " |")
    return lines


def timing_lines(
    data: list[Population],
    sizes: list[int],
    cells: list[PowerCell],
    ours: dict[tuple[str, int], Tally],
    power: dict[str, Tally],
    build_seconds: dict[str, float],
    theirs: dict[str, list[dict[str, Any]]],
) -> list[str]:
    """Time per batch for both tools, and driftloop's profile build per reference."""
    lines = [
        "| cell | driftloop check ms (mean) | Evidently per batch ms (its drift function) "
        "| Evidently full Report s (mean) |",
        "| --- | ---: | ---: | ---: |",
    ]
    keys = [(f"{p.name}:{n}", ours[p.name, n]) for p in data for n in sizes]
    keys += [(cell.key, power.get(cell.key, Tally())) for cell in cells]
    for key, tally in keys:
        e, reports, _, report_s = evidently_tally(theirs.get(key, []))
        cells_ = [
            key,
            f"{1000 * tally.seconds / max(tally.batches, 1):.1f}",
            f"{1000 * e.seconds / e.batches:.0f}" if e.batches else "-",
            f"{report_s:.1f}" if reports else "-",
        ]
        lines.append("| " + " | ".join(cells_) + " |")
    lines.append("")
    lines.append(
        "driftloop profile build with calibration, mean per reference: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in build_seconds.items())
    )
    return lines


LOAD_AT_START = os.getloadavg()


def machine_lines(started: float, evidently_meta: dict[str, Any]) -> list[str]:
    """The machine, its load, the library versions and the command: the figures' context."""
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"run took {(time.time() - started) / 60:.1f} min",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM",
        "- load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.2f}" for x in LOAD_AT_START)
        + f"; at the end: {load}",
        f"- Python {platform.python_version()}; numpy {version('numpy')}, "
        f"pandas {version('pandas')}, "
        f"scikit-learn {version('scikit-learn')}, driftloop {version('driftloop')}; "
        f"Evidently {evidently_meta.get('evidently', 'not run')} in var/bench-evidently-venv",
        "- command: `"
        + " ".join([".venv/bin/python", "benchmarks/drift_calibration.py", *sys.argv[1:]])
        + "`",
    ]


def report(
    args: argparse.Namespace,
    data: list[Population],
    cells: list[PowerCell],
    reached: dict[str, float],
    ours: dict[tuple[str, int], Tally],
    power: dict[str, Tally],
    build_seconds: dict[str, float],
    theirs: dict[str, list[dict[str, Any]]],
    meta: dict[str, Any],
    started: float,
) -> str:
    """The whole Markdown report of one run."""
    shapes = ", ".join(
        f"{p.name} {len(p.frame):,} rows x {len(p.frame.columns)} features"
        + (f" ({len(p.categorical)} categorical)" if p.categorical else "")
        for p in data
    )
    evidently_note = (
        "Evidently skipped (--skip-evidently)."
        if args.skip_evidently
        else f"Evidently: its drift function on the first {args.evidently_batches} batches of "
        f"each cell (fewer where the table says so; 3 at 1M rows), full Report on the first "
        f"{args.evidently_reports}; stopped at the deadline: {meta.get('stopped_at_deadline')}; "
        f"took {meta.get('seconds', math.nan) / 60:.1f} min in parallel."
    )
    sections = [
        ["## Machine and command", ""],
        machine_lines(started, meta),
        [
            "",
            f"Data: {shapes}. {args.splits} references per data set; "
            f"{args.batches} clean batches per cell ({meta.get('driftloop', '')}). "
            + evidently_note,
            "",
            "## False alarms on clean batches (targets: at most 1.5% of batches called drift, "
            "at most 1.5% of features flagged per batch)",
            "",
        ],
        false_alarm_table(data, args.sizes, ours, theirs),
        ["", "Features driftloop flagged most often on clean batches (share of batches):", ""],
        worst_features(data, args.sizes, ours),
        ["", "Evidently's tests (chosen by its defaults, first batch of each cell):", ""],
        [f"- {key}: {evidently_methods(records)}" for key, records in theirs.items() if records],
        [
            "",
            "## Power (target: flagged in at least 95% of batches; 1M rows: at most 5%)",
            "",
            "Categorical shifts: JS distance (base 2) between the generating distributions "
            + ", ".join(f"{k} {v:.6f}" for k, v in reached.items())
            + f". A new reference every {REFERENCE_EVERY} batches.",
            "",
        ],
        power_table(cells, power, theirs),
        ["", "## Dataset verdict (driftloop drift_share 0.3)", ""],
        dataset_table(cells, power, theirs),
        ["", "## Time per batch", ""],
        timing_lines(data, args.sizes, cells, ours, power, build_seconds, theirs),
    ]
    return "\n".join(line for section in sections for line in section)
