"""Run one of ``tests/support``'s Airflow scripts in a fresh interpreter and read its result:
the JSON after the last ``RESULT `` line it prints (Airflow logs its own lines around it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

PYTHON = str(ROOT / ".venv/bin/python")


def script_result(script: str, *args: str, env: dict[str, str]) -> Any:
    """Run ``tests/support/<script>`` with ``args``; fail with the output's tail if it did not
    exit cleanly with a result."""
    done = subprocess.run(
        [PYTHON, str(Path(ROOT / "tests/support" / script)), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout + done.stderr)[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))
