"""Cells split into chunks of references, each chunk's result kept on disk with the code it
measured, so that a run of many hours can stop and go on (``--store``, ``--chunk-references``).

Why: the decision tables at the issues' full size cost tens of CPU hours on a 2-core machine,
more than one sitting gives, and a process pool splits cells, not references, so the widest
cells ran on one core. A chunk is ``references`` of a cell's references with a seed of its own
(the cell's seed plus the chunk's index times 2**32: chunk 0 of a cell in one chunk is today's
unchunked run, draw for draw). Its result is stored as JSON with the hashes of every source file it
depended on (the driftloop modules and benchmark modules loaded while it ran, the data files it
read, the lock, and the installed versions of Python and the numeric packages), and is reused
only while each of those is unchanged: a table printed from stored chunks
measured the code that is checked out, however many runs filled the store.

The merge is generic over what a section's ``run_cell`` returns (a tuple): lists are per
reference and concatenate, dicts merge per key, tuples per position, integers are the cell's
parameters (batches per reference) and must agree, floats are per-check means weighted by the
chunk's references.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from support.common import cpu_model

BENCHMARKS = Path(__file__).resolve().parents[1]
ROOT = BENCHMARKS.parent
# harness modules: they print, time and store, and cannot change a chunk's counts
HARNESS = {"support/chunks.py", "support/decisions.py", "support/common.py", "decisions.py"}
LOCK = "requirements.txt"
SEED_STRIDE = 2**32
"""Chunk ``k`` of a cell is seeded ``seed + k * SEED_STRIDE``: chunk 0 is the unchunked run's
seed, and no chunk of a run takes another run's seed (``--seed S + 1``)."""


@dataclass(frozen=True)
class Chunk:
    """References ``index * size`` onward of a cell: ``job`` is the section's ``run_cell``
    arguments with ``(batches, references, seed)`` last, rewritten for the chunk."""

    cell: int  # the job's position in the section's list
    index: int
    job: tuple

    @property
    def references(self) -> int:
        return int(self.job[-2])


def split(jobs: Sequence[tuple], size: int | None) -> list[Chunk]:
    """Each job ``(*cell, batches, references, seed)`` as chunks of at most ``size`` references
    (all of them when ``size`` is None), each with ``batches // references`` per reference."""
    chunks = []
    for position, job in enumerate(jobs):
        *cell, batches, references, seed = job
        per_reference = max(1, batches // references)
        step = references if not size or size >= references else size
        for index, first in enumerate(range(0, references, step)):
            count = min(step, references - first)
            chunk_job = (*cell, per_reference * count, count, seed + index * SEED_STRIDE)
            chunks.append(Chunk(position, index, chunk_job))
    return chunks


def merge(parts: Sequence[Any], weights: Sequence[int]) -> Any:
    """One cell's result from its chunks' results (see the module's docstring)."""
    first = parts[0]
    if isinstance(first, list):
        return [value for part in parts for value in part]
    if isinstance(first, dict):
        return {key: merge([part[key] for part in parts], weights) for key in first}
    if isinstance(first, tuple):
        return tuple(merge(list(values), weights) for values in zip(*parts, strict=True))
    if isinstance(first, int):  # bool too
        if any(part != first for part in parts):
            raise ValueError(f"chunks of one cell disagree on a parameter: {sorted(set(parts))}")
        return first
    if isinstance(first, float):
        return sum(part * weight for part, weight in zip(parts, weights, strict=True)) / sum(
            weights
        )
    raise TypeError(f"cannot merge chunk results of type {type(first).__name__}")


def _tuples(value: Any) -> Any:
    """JSON's lists back into the tuples ``run_cell`` returned (lists of numbers stay lists)."""
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(_tuples(item) for item in value["tuple"])
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tuples(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """A result as JSON keeps it, tuples marked so that they come back as tuples."""
    if isinstance(value, tuple):
        return {"tuple": [_plain(item) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("a stored result's dict keys must be strings (JSON's keys are)")
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):  # numpy scalars; arrays are refused below
        return value.item()
    if not isinstance(value, str | int | float | None):
        raise TypeError(f"cannot store a chunk result of type {type(value).__name__}")
    return value


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_INPUTS: set[Path] = set()
_FIRST_SEEN: dict[str, str] = {}
VERSIONED = ("numpy", "scipy", "pandas", "scikit-learn")


def depends_on(path: Path) -> Path:
    """Count a data file a section reads among its chunks' sources; returns ``path``."""
    _INPUTS.add(Path(path).resolve())
    return path


def _files() -> dict[str, Path]:
    """The files a chunk's counts can depend on, loaded or read in this process: driftloop's
    modules, the benchmark's own (not the harness), data files named by :func:`depends_on`,
    and the lock; by their name from the repository root (driftloop's from its package)."""
    import driftloop

    package = Path(driftloop.__file__).resolve().parent
    files: dict[str, Path] = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        ours = module.__name__.split(".")[0] == "driftloop" or "benchmarks" in name
        if not ours:  # resolving every loaded module's path cost ~50 ms per chunk
            continue
        path = Path(name).resolve()
        if path.is_relative_to(package):
            files[f"driftloop/{path.relative_to(package).as_posix()}"] = path
        elif path.is_relative_to(BENCHMARKS):
            relative = path.relative_to(BENCHMARKS).as_posix()
            if relative not in HARNESS:
                files[f"benchmarks/{relative}"] = path
    for path in _INPUTS:
        name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        files[name] = path
    if (ROOT / LOCK).exists():
        files[LOCK] = ROOT / LOCK
    return files


@cache
def _versions() -> dict[str, str]:
    """Python's and the numeric packages' versions: their random streams and results (read
    once: a process runs the versions it loaded first)."""
    shown = {"version/python": platform.python_version()}
    shown.update({f"version/{name}": version(name) for name in VERSIONED})
    return shown


def sources() -> dict[str, str]:
    """:func:`_files` with their SHA-256 as first seen in this process, and the versions.

    Raises if a file changed since this process first hashed it (a run forks its workers after
    hashing what it loaded): a chunk must not be stored under code it did not run."""
    found: dict[str, str] = {}
    for name, path in _files().items():
        digest = _sha(path)
        first = _FIRST_SEEN.setdefault(name, digest)
        if digest != first:
            raise RuntimeError(
                f"{name} changed while this run went on: its chunks ran the code loaded before,"
                " so they are not stored; start the run again"
            )
        found[name] = digest
    return dict(sorted({**found, **_versions()}.items()))


def current(files: dict[str, str]) -> bool:
    """Whether every file a stored chunk depended on, and every version, is as it was."""
    import driftloop

    package = Path(driftloop.__file__).resolve().parent
    versions = _versions()
    for name, digest in files.items():
        if name.startswith("version/"):
            if versions.get(name) != digest:
                return False
            continue
        if name.startswith("driftloop/"):
            path = package / name.removeprefix("driftloop/")
        else:
            path = Path(name) if Path(name).is_absolute() else ROOT / name
        if not path.exists() or _sha(path) != digest:
            return False
    return True


def run_chunk(
    function: Callable[..., Any], job: tuple, stored: bool
) -> tuple[Any, dict[str, str], float]:
    """``function(*job)``, the sources it depended on (when it is ``stored``; else none), and
    its CPU seconds (in the worker)."""
    started = time.process_time()
    result = function(*job)
    return result, sources() if stored else {}, time.process_time() - started


class Store:
    """Chunk results under ``root``: one JSON file per chunk, in a folder per section script and
    function (``decision_tables_drift/run_cell``), named by the hash of the chunk's arguments,
    reused while the sources it recorded are unchanged. The sources, the same for most chunks,
    are kept once under ``root/sources/<their hash>.json`` and named by their hash in each
    chunk's file."""

    def __init__(self, root: Path, section: str) -> None:
        self.root, self.section = Path(root), section
        self._checked: dict[str, bool] = {}

    def key(self, chunk: Chunk) -> str:
        return repr((self.section, chunk.job))

    def path(self, chunk: Chunk) -> Path:
        digest = hashlib.sha256(self.key(chunk).encode()).hexdigest()[:20]
        return self.root / self.section / f"{digest}.json"

    def load(self, chunk: Chunk) -> Any | None:
        """The stored result, or None when there is none, it cannot be read, or its sources
        changed."""
        try:
            stored = json.loads(self.path(chunk).read_text())
            if stored["key"] != self.key(chunk):
                return None
            version = stored["sources"]
            if version not in self._checked:
                files = json.loads((self.root / "sources" / f"{version}.json").read_text())
                self._checked[version] = current(files)
            return _tuples(stored["result"]) if self._checked[version] else None
        except (OSError, ValueError, KeyError, TypeError):  # none, or not a chunk record
            return None

    def save(self, chunk: Chunk, result: Any, files: dict[str, str], cpu: float) -> None:
        """Write the chunk's result (and its sources, if new) atomically."""
        listed = json.dumps(files, indent=1, sort_keys=True) + "\n"
        version = hashlib.sha256(listed.encode()).hexdigest()[:20]
        if not (self.root / "sources" / f"{version}.json").exists():
            _write(self.root / "sources" / f"{version}.json", listed)
        record = {
            "key": self.key(chunk),
            "result": _plain(result),
            "cpu_seconds": round(cpu, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{cpu_model()}, {os.cpu_count()} cores",
            "sources": version,
        }
        _write(self.path(chunk), json.dumps(record) + "\n")


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a stopped run, or two runs on one store,
    leave no half file (each writes a temporary file of its own, synced, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.stem}.", suffix=".part", delete=False
    ) as partial:
        partial.write(text)
        partial.flush()
        os.fsync(partial.fileno())
    Path(partial.name).replace(path)
