"""What every report page shares: atomic file writes, a stylesheet, and plots as inline PNG,
so a report is one standalone file that can be mailed or served read-only."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

# A backslash at a line's end continues that line: the text has no line break there.
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0}\
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.flag{background:#fde2e1;font-weight:600}
.verdict{font-size:1.3rem;padding:.5rem 1rem;display:inline-block;border-radius:4px}
.drift,.reject{background:#fde2e1}.no_drift,.promote{background:#e3f6e5}
.insufficient_data,.failed,.continue,.inconclusive{background:#fff4d6}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.grid figure{margin:0}.grid img{width:320px}
figcaption{font-size:.85rem;text-align:center}
"""


def atomic_write(path: Path, text: str) -> None:
    """Write through a staged file and a rename, so a reader never sees half a report."""
    staged = path.with_name(path.name + ".part")
    staged.write_text(text, encoding="utf-8")
    staged.replace(path)


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (servers and workers have no screen), with
    the font matplotlib ships: PyCaret imports yellowbrick, which asks for Arial or Liberation
    Sans, and every label then logs a ``findfont`` warning where those are not installed."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["font.family"] = ["sans-serif"]
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    import matplotlib.pyplot as plt

    return plt


def png_base64(figure: Any) -> str:
    """The figure as base64 PNG for an ``<img src="data:...">``; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
