"""docs/architecture.md names modules, files and functions; a rename that forgets the doc fails
here (issue 29, item 3): every dotted ``driftloop.*`` name resolves, every path with a folder
exists (library paths are under ``include/``)."""

from __future__ import annotations

import importlib
import re

from tests.conftest import ROOT

DOC = ROOT / "docs/architecture.md"


def _resolves(dotted: str) -> bool:
    """A module, or an attribute of the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_every_dotted_name_in_the_architecture_doc_resolves() -> None:
    names = sorted(set(re.findall(r"`(driftloop(?:\.[a-z_]+)+)`", DOC.read_text())))
    assert len(names) >= 10
    assert [name for name in names if not _resolves(name)] == []


def test_every_path_in_the_architecture_doc_exists() -> None:
    paths = sorted(set(re.findall(r"`((?:[a-z_]+/)+[a-z_<>]+\.py)`", DOC.read_text())))
    assert len(paths) >= 10
    missing = [
        path
        for path in paths
        if "<" not in path and not (ROOT / path).exists() and not (ROOT / "include" / path).exists()
    ]
    assert missing == []
