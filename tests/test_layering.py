"""The library's layers, read from the code's own imports (parsed, never executed).

- No import cycle among the modules of ``include/driftloop``, counting the imports a module runs
  when it is imported: those at module level, not those inside functions or under
  ``if TYPE_CHECKING:``.
- The library imports nothing from the server (``serving``), the DAGs or Airflow plugins, at any
  level; the command line (``driftloop.cli``) and the demo are the top layer and may use the
  server, though the concepts they share with it (the traffic split) live in the library.
- ``driftloop.config`` (the settings models) imports nothing else from driftloop at all, so
  anything may import it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from .conftest import ROOT

LIBRARY = ROOT / "include"
TOP_LAYER = ("driftloop.cli", "driftloop.demo")  # the command line and the demo
# plugins/ is on Airflow's sys.path, so its modules are imported by their own names
OUTSIDE = ("serving", "dags", "plugins", "driftloop_plugin", "driftloop_ui")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((LIBRARY / "driftloop").rglob("*.py")):
        parts = path.relative_to(LIBRARY).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], module_level: bool) -> Iterator[ast.stmt]:
    """The statements a module runs on import (module level), or every statement."""
    for node in body:
        yield node
        if module_level:
            if isinstance(node, ast.If):
                if not _is_type_checking(node):
                    yield from _statements(node.body, module_level)
                yield from _statements(node.orelse, module_level)
            elif isinstance(node, ast.Try | ast.TryStar):
                for block in (node.body, node.orelse, node.finalbody):
                    yield from _statements(block, module_level)
                for handler in node.handlers:
                    yield from _statements(handler.body, module_level)
            elif isinstance(node, ast.With):
                yield from _statements(node.body, module_level)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _statements([child], module_level)


def imports(name: str, module_level: bool) -> set[str]:
    """The modules ``name`` imports: ``from package import submodule`` counts as the submodule,
    ``from module import name`` as the module."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _statements(ast.parse(path.read_text()).body, module_level):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            submodules = {f"{source}.{a.name}" for a in node.names} & MODULES.keys()
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(source)
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def test_the_library_has_no_import_cycle():
    graph = {
        name: {m for m in imports(name, module_level=True) if m in MODULES and m != name}
        for name in MODULES
    }
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def _imports_from_outside(modules: list[str]) -> list[str]:
    return sorted(
        f"{name} imports {imported}"
        for name in modules
        for imported in imports(name, module_level=False)
        if _within(imported, OUTSIDE)
    )


def test_only_the_cli_and_the_demo_use_the_server_dags_or_plugins():
    assert _imports_from_outside([m for m in MODULES if not _within(m, TOP_LAYER)]) == []


def test_the_traffic_split_and_the_simulator_live_in_the_library():
    """Even the command line and the demo take the traffic split and the simulator from the
    library, as the server does."""
    assert _imports_from_outside(list(MODULES)) == []


def test_the_settings_models_import_nothing_else_from_driftloop():
    package = [m for m in MODULES if _within(m, ("driftloop.config",))]
    assert package == [
        "driftloop.config",
        "driftloop.config.ab",
        "driftloop.config.base",
        "driftloop.config.sections",
    ]
    outside = {
        m
        for module in package
        for m in imports(module, module_level=False)
        if m.startswith("driftloop") and not _within(m, ("driftloop.config",))
    }
    assert outside == set()


def test_loading_the_settings_imports_no_drift_or_data_code():
    """Validating a config (as every DAG file does at parse time) runs none of driftloop's
    drift or data code; the feature columns are read from the file's header only when asked."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from driftloop.settings_loader import load_settings\n"
            f"settings = load_settings({str(ROOT / 'driftloop.yaml')!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith('driftloop')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(
        [
            "driftloop",
            "driftloop.config",
            "driftloop.config.ab",
            "driftloop.config.base",
            "driftloop.config.sections",
            "driftloop.settings_loader",
        ]
    )


def test_the_settings_list_driftloops_statistics_exactly():
    """config.STATISTIC_NAMES (what a config is validated against) is the registry's names, in a
    fresh interpreter: a test elsewhere registers a statistic of its own at run time."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from driftloop.config import STATISTIC_NAMES\n"
            "from driftloop.drift.statistics import STATISTICS\n"
            "print(sorted(STATISTIC_NAMES) == sorted(STATISTICS), sorted(STATISTICS))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("True"), out


def test_the_layering_check_sees_what_it_checks():
    """The parser finds real imports, so the tests above cannot pass by finding nothing."""
    assert "driftloop.config" in imports("driftloop.data", module_level=True)
    assert "driftloop.drift.profile" in imports("driftloop.drift.statistics", module_level=False)
    assert "driftloop.drift.profile" not in imports("driftloop.drift.statistics", module_level=True)
    assert "driftloop.cli.promotion" in imports("driftloop.cli.ab", module_level=True)
