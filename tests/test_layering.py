"""The library's layers, read from the code's own imports (parsed, never executed).

Layers, bottom up (``LAYERS``): the foundation (settings, storage and schema, registry
conventions, data reading, vocabulary, events, task kinds) at the package root; the methods
(``drift``, ``performance``, ``ab``, ``gate``, ``training``, ``scoring``, ``reports``,
``ingestion``), pure computations that write nothing; the stages (``driftloop.stages``: all
that writes rows, logs to MLflow, moves aliases or sends alerts); the entry points (the CLI, the
demo, the Airflow glue, the page and gauges, the process stack).

- No module imports from a layer above its own, at any level.
- No import cycle among modules or among packages, counting every import: module level,
  inside functions and under ``if TYPE_CHECKING:``.
- No method module writes: no session ``add``/``delete``/``flush``, no SQL insert, update or
  delete, no MLflow logging, no alias move.
- The library imports nothing from the server (``serving``), the DAGs or Airflow plugins; the
  command line and the demo may.
- ``driftloop.config`` (the settings models) imports nothing else from driftloop at all.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIBRARY = ROOT / "include"
TOP_LAYER = ("driftloop.cli", "driftloop.demo")  # the command line and the demo
FOUNDATION = (
    "driftloop.config",
    "driftloop.data",
    "driftloop.database",
    "driftloop.events",
    "driftloop.migrations",
    "driftloop.redaction",
    "driftloop.registry",
    "driftloop.schema",
    "driftloop.settings_loader",
    "driftloop.storage",
    "driftloop.task",
    "driftloop.vocabulary",
)
METHODS = tuple(
    f"driftloop.{name}"
    for name in (
        "ab",
        "drift",
        "gate",
        "ingestion",
        "performance",
        "reports",
        "scoring",
        "training",
    )
)
STAGES = ("driftloop.stages",)
ENTRY_POINTS = (*TOP_LAYER, "driftloop.orchestration", "driftloop.stack", "driftloop.ui")
LAYERS = (FOUNDATION, METHODS, STAGES, ENTRY_POINTS)
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


def _graph(module_level: bool) -> dict[str, set[str]]:
    return {
        name: {m for m in imports(name, module_level) if m in MODULES and m != name}
        for name in MODULES
    }


def _package(name: str) -> str:
    """The unit of the package check: a subpackage, or a module at the root."""
    return ".".join(name.split(".")[:2])


def layer_of(name: str) -> int:
    """The index in ``LAYERS`` of the group that holds ``name`` (the most specific prefix)."""
    if name == "driftloop":  # the package's own __init__: its version, nothing else
        return 0
    best, found = -1, -1
    for index, group in enumerate(LAYERS):
        for prefix in group:
            if _within(name, (prefix,)) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def test_the_library_has_no_import_cycle_at_any_level():
    try:
        tuple(TopologicalSorter(_graph(module_level=False)).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def test_the_packages_have_no_import_cycle():
    packages: dict[str, set[str]] = {}
    for name, imported in _graph(module_level=False).items():
        packages.setdefault(_package(name), set()).update(
            _package(m) for m in imported if _package(m) != _package(name)
        )
    try:
        tuple(TopologicalSorter(packages).static_order())
    except CycleError as cycle:
        pytest.fail(f"package import cycle: {' -> '.join(cycle.args[1])}")


def test_every_module_has_a_layer():
    assert [name for name in MODULES if layer_of(name) < 0] == []


def test_no_import_runs_up_a_layer():
    upward = sorted(
        f"{name} imports {imported}"
        for name, found in _graph(module_level=False).items()
        for imported in found
        if layer_of(imported) > layer_of(name)
    )
    assert upward == []


WRITES = {
    "add",
    "add_all",
    "delete",
    "flush",
    "merge",
    "insert",
    "update",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_dict",
    "log_text",
    "log_figure",
    "log_model",
    "set_tag",
    "set_tags",
    "start_run",
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "transition_model_version_stage",
    "create_model_version",
    "send",
}
WRITERS = {"session", "sa", "sqlalchemy", "mlflow", "client", "connection", "alerts"}


def writes(name: str) -> list[str]:
    """Calls in ``name`` that write: a write method on a session, SQLAlchemy's insert, update
    and delete, MLflow's logging and registry moves, an alert."""
    found = []
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        if node.func.attr in WRITES and owner_name in WRITERS:
            found.append(f"{name}:{node.lineno} {owner_name}.{node.func.attr}")
    return found


def test_the_methods_write_nothing():
    assert [w for name in MODULES if layer_of(name) == 1 for w in writes(name)] == []


def test_the_write_check_sees_writes():
    """The scan finds the stages' writes, so the test above cannot pass by finding nothing."""
    assert any("session.add" in w for w in writes("driftloop.stages.approval"))
    assert any(
        "client.set_registered_model_alias" in w for w in writes("driftloop.stages.role_moves")
    )
    assert any(
        "mlflow.log_" in w or "mlflow.start_run" in w for w in writes("driftloop.stages.tracking")
    )


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
        "driftloop.config.drift",
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
            "driftloop.config.drift",  # the drift section's settings, no drift code
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
    assert "driftloop.stages.ab_tests" in imports("driftloop.stages.approval", module_level=True)
    assert "driftloop.stages.ingest" in imports("driftloop.stages.batch_labels", module_level=False)
    assert "driftloop.config" in imports("driftloop.stages.approval", module_level=False)
    assert "driftloop.config" not in imports("driftloop.stages.approval", module_level=True)
    assert layer_of("driftloop.drift.engine") == 1 and layer_of("driftloop.stages.retrain") == 2
    assert "driftloop.cli.promotion" in imports("driftloop.cli.ab", module_level=True)
