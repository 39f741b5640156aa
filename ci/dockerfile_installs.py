"""Print the Dockerfile's pip and uv commands as shell lines for a virtualenv instead of the
image's system Python, so ``ci/wheel_check.sh`` replays exactly what the image build installs.

    python ci/dockerfile_installs.py Dockerfile /path/to/venv/bin/python

Only ``pip ...`` and ``uv ...`` commands of ``RUN`` instructions are kept (split on ``&&``);
``--system`` becomes ``--python <venv python>`` and ``pip`` becomes ``<venv python> -m pip``.
A Dockerfile without any is an error: the check would otherwise test nothing.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path


def instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            joined.append(current.strip())
        current = ""
    return joined


def installs(dockerfile: Path, python: str) -> list[str]:
    """Each pip/uv command of the RUN instructions, rewritten for ``python``'s environment."""
    commands = []
    for instruction in instructions(dockerfile.read_text()):
        if not instruction.upper().startswith("RUN "):
            continue
        for part in re.split(r"&&|;", instruction[4:]):
            words = shlex.split(part)
            if not words or words[0] not in {"pip", "uv"}:
                continue
            words = [w for w in words if w != "--system"]
            if words[0] == "pip":
                words = [python, "-m", *words]
            else:  # uv pip <verb> ...: the target interpreter goes after the verb
                words[3:3] = ["--python", python]
            commands.append(shlex.join(words))
    if not commands:
        sys.exit(f"{dockerfile}: no pip or uv command in any RUN instruction")
    return commands


if __name__ == "__main__":
    print("\n".join(installs(Path(sys.argv[1]), sys.argv[2])))
