"""The real ``driftloop`` command, run as a user runs it: the installed entry point in a fresh
process, with ``driftloop.yaml`` and only the ``DRIFTLOOP_*`` variables a test sets; or, where
seconds of start-up matter more, its ``main`` in the test's process (``in_process``)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from tests.conftest import ROOT

DRIFTLOOP = str(ROOT / ".venv/bin/driftloop")


class Shown(Enum):
    """What a call returns: everything printed, or (the command's message when it fails) its
    output on success and its last line of errors on failure (MLflow logs to stderr first)."""

    ALL = "all"
    OUTPUT_OR_ERROR = "output or error"


def clean_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any ``DRIFTLOOP_*``, with ``home`` as the store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    return env | {"DRIFTLOOP_STORAGE__HOME": str(home)} | variables


@dataclass
class Cli:
    """``cli("drift", "check", "3", expect=1)``: runs the command, checks its exit code and
    that no traceback reached the user, and returns what it showed."""

    env: dict[str, str]
    cwd: Path
    shown: Shown = Shown.ALL
    timeout: float = 300.0
    config: Path = field(default=ROOT / "driftloop.yaml")

    def __call__(
        self, *args: str, expect: int = 0, answer: str | None = None, **variables: str
    ) -> str:
        done = subprocess.run(
            [DRIFTLOOP, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env | variables,
            input=answer,
            cwd=self.cwd,
            timeout=self.timeout,
        )
        assert done.returncode == expect, done.stdout + done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        if self.shown is Shown.ALL:
            return done.stdout + done.stderr
        return done.stdout if expect == 0 else done.stderr.splitlines()[-1]


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def in_process(*args: str) -> Done:
    """``driftloop ARGS`` through ``main``, as the installed command calls it, in this process:
    its exit code and both streams. Seconds cheaper than a fresh interpreter; for commands that
    leave nothing behind in the process that matters (MLflow's tracking URI is set per call)."""
    from driftloop.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["driftloop", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0  # main always exits; kept for a main that returns
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = argv
    return Done(code, out.getvalue(), err.getvalue())
