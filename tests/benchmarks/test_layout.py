"""The benchmarks stay runnable (issue 29, item 5), read from their source (parsed, never run).

Why: a benchmark nobody runs rots silently. ``ci/benchmarks_smoke.sh`` runs every script under
``benchmarks/`` at its ``--smoke`` size in CI, so every script must have one; and a script that
imports another breaks when the other changes, so scripts share code only through
``benchmarks/support``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
SUPPORT = sorted((BENCHMARKS / "support").glob("*.py"))
NAMES = {path.stem for path in SCRIPTS}
SMOKE_HELPERS = {"add_smoke", "section_parser", "run_section"}  # benchmarks/support: add --smoke


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def call_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def has_smoke_option(module: ast.Module) -> bool:
    """``add_argument("--smoke", ...)`` or a support helper that adds it."""
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        if name in SMOKE_HELPERS:
            return True
        first = node.args[0] if node.args else None
        if name == "add_argument" and isinstance(first, ast.Constant) and first.value == "--smoke":
            return True
    return False


def imported_modules(module: ast.Module) -> set[str]:
    """Top-level names of every import at any level, and of ``import_module("...")`` calls."""
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and call_name(node) in {"import_module", "__import__"}:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value.split(".")[0])
    return names


def test_the_benchmarks_are_found() -> None:
    """The checks below are not vacuous: scripts and the support package exist."""
    assert len(SCRIPTS) >= 10
    assert (BENCHMARKS / "support" / "common.py") in SUPPORT


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_script_has_a_smoke_size(path: Path) -> None:
    assert has_smoke_option(tree(path)), f"{path.name} has no --smoke option"


@pytest.mark.parametrize("path", SCRIPTS + SUPPORT, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_no_script_is_imported(path: Path) -> None:
    imported = imported_modules(tree(path)) & NAMES
    assert not imported, f"{path.name} imports the benchmark scripts {sorted(imported)}"


def test_the_checks_see_what_they_look_for() -> None:
    """Both detectors on known snippets, so a parse change cannot turn them into no-ops."""
    snippet = ast.parse(
        "def f():\n    import serving_bench as sb\n"
        "from drift_bench import x\nimportlib.import_module('decisions')\n"
        "parser.add_argument('--smoke', action='store_true')\n"
    )
    assert imported_modules(snippet) >= {"serving_bench", "drift_bench", "decisions"}
    assert has_smoke_option(snippet)
    assert not has_smoke_option(ast.parse("parser.add_argument('--quick')\n"))


def test_one_command_runs_the_smoke_sizes() -> None:
    """``make bench-smoke`` runs them all (not ``make test``). CI does not yet: its 60 minutes
    hold the tests, the demo and the wheel check until ``make test`` is cut (issue 29)."""
    makefile = (ROOT / "Makefile").read_text()
    assert "bench-smoke:" in makefile and "ci/benchmarks_smoke.sh" in makefile
    script = ROOT / "ci" / "benchmarks_smoke.sh"
    assert script.stat().st_mode & 0o111, "ci/benchmarks_smoke.sh is not executable"


def test_the_slowest_files_named_for_the_test_order_exist():
    """``make test`` starts these first (tests/conftest.py); a renamed file would silently
    fall back to the usual order."""
    from tests.conftest import ROOT, SLOWEST_FILES

    assert [path for path in SLOWEST_FILES if not (ROOT / path).is_file()] == []
