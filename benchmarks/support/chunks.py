"""Cells split into chunks of references, each chunk's result kept on disk with the code it
measured, so that a run of many hours can stop and go on (``--store``, ``--chunk-references``).

Why: the decision tables at the issues' full size cost tens of CPU hours on a 2-core machine,
more than one sitting gives, and a process pool splits cells, not references, so the widest
cells ran on one core. A chunk is ``references`` of a cell's references with a seed of its own
(the cell's seed plus the chunk's index: chunk 0 of a cell in one chunk is today's unchunked
run, draw for draw). Its result is stored as JSON with the hashes of every source file it
depended on (the driftloop modules and benchmark modules loaded while it ran, and the lock), and
is reused only while each of those files is unchanged: a table printed from stored chunks
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
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.common import cpu_model

BENCHMARKS = Path(__file__).resolve().parents[1]
ROOT = BENCHMARKS.parent
# harness modules: they print, time and store, and cannot change a chunk's counts
HARNESS = {"support/chunks.py", "support/decisions.py", "support/common.py", "decisions.py"}
LOCK = "requirements.txt"


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
            chunk_job = (*cell, per_reference * count, count, seed + index)
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
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sources() -> dict[str, str]:
    """Every source file a chunk's counts can depend on, loaded in this process: driftloop's
    modules, the benchmark's own (not the harness), and the lock; path (from the repository
    root, driftloop's from its package) to SHA-256."""
    import driftloop

    package = Path(driftloop.__file__).resolve().parent
    files: dict[str, str] = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        path = Path(name).resolve()
        if path.is_relative_to(package):
            files[f"driftloop/{path.relative_to(package).as_posix()}"] = _sha(path)
        elif path.is_relative_to(BENCHMARKS):
            relative = path.relative_to(BENCHMARKS).as_posix()
            if relative not in HARNESS:
                files[f"benchmarks/{relative}"] = _sha(path)
    if (ROOT / LOCK).exists():
        files[LOCK] = _sha(ROOT / LOCK)
    return dict(sorted(files.items()))


def current(files: dict[str, str]) -> bool:
    """Whether every file a stored chunk depended on is as it was."""
    import driftloop

    package = Path(driftloop.__file__).resolve().parent
    for name, digest in files.items():
        if name.startswith("driftloop/"):
            path = package / name.removeprefix("driftloop/")
        else:
            path = ROOT / name
        if not path.exists() or _sha(path) != digest:
            return False
    return True


def run_chunk(function: Callable[..., Any], job: tuple) -> tuple[Any, dict[str, str], float]:
    """``function(*job)``, the sources it depended on, and its CPU seconds (in the worker)."""
    started = time.process_time()
    result = function(*job)
    return result, sources(), time.process_time() - started


class Store:
    """Chunk results under ``root``: one JSON file per chunk, in a folder per section script and
    function (``decision_tables_drift/run_cell``), named by the hash of the chunk's arguments,
    reused while the sources it recorded are unchanged."""

    def __init__(self, root: Path, section: str) -> None:
        self.root, self.section = Path(root), section
        self._checked: dict[str, bool] = {}

    def path(self, chunk: Chunk) -> Path:
        key = repr((self.section, chunk.job))
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return self.root / self.section / f"{digest}.json"

    def load(self, chunk: Chunk) -> Any | None:
        """The stored result, or None when there is none or its sources changed."""
        path = self.path(chunk)
        if not path.exists():
            return None
        stored = json.loads(path.read_text())
        if stored.get("key") != repr((self.section, chunk.job)):
            return None
        version = json.dumps(stored["sources"], sort_keys=True)
        if version not in self._checked:
            self._checked[version] = current(stored["sources"])
        return _tuples(stored["result"]) if self._checked[version] else None

    def save(self, chunk: Chunk, result: Any, files: dict[str, str], cpu: float) -> None:
        """Write the chunk's result atomically (a stopped run leaves no half file)."""
        path = self.path(chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "key": repr((self.section, chunk.job)),
            "result": _plain(result),
            "cpu_seconds": round(cpu, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{cpu_model()}, {os.cpu_count()} cores",
            "sources": files,
        }
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps(record, indent=1) + "\n")
        partial.replace(path)
