"""Decision-table cells in chunks of references, kept with the sources they measured.

Why: a full-size run of ``benchmarks/decisions.py`` takes longer than one sitting; its cells are
split into chunks whose results are stored and reused by later runs. A table printed from the
store must equal what one run would have printed for the same chunks, and must never mix in a
chunk measured by other code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")
if BENCHMARKS not in sys.path:  # the benchmarks import their shared code as ``support``
    sys.path.append(BENCHMARKS)
from support import chunks  # noqa: E402
from support.decisions import run_cells  # noqa: E402

CALLS: list[tuple] = []


def toy_cell(rate: float, batches: int, references: int, seed: int) -> tuple:
    """A section's ``run_cell`` in miniature: flags per reference, (a per-reference side count,
    its denominator), batches per reference, seconds per check."""
    CALLS.append((rate, batches, references, seed))
    rng = np.random.default_rng([seed, int(rate * 100)])
    per_reference = batches // references
    flags = [int(rng.binomial(per_reference, rate)) for _ in range(references)]
    return flags, ([1] * references, [2] * references), per_reference, 0.5 + references


def chunk_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.json") if path.parent.name != "sources")


def sources_of(root: Path, record: dict) -> dict[str, str]:
    return json.loads((root / "sources" / f"{record['sources']}.json").read_text())


def options(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"workers": 1, "chunk_references": None, "store": None, **given})


def test_one_chunk_per_cell_without_the_option_is_the_unchunked_run() -> None:
    jobs = [(0.1, 1_000, 20, 7), (0.3, 500, 5, 7)]
    assert chunks.split(jobs, None) == [chunks.Chunk(0, 0, jobs[0]), chunks.Chunk(1, 0, jobs[1])]
    assert chunks.split(jobs, 20)[0].job == jobs[0]
    assert run_cells(toy_cell, jobs, options()) == [toy_cell(*job) for job in jobs]


def test_chunks_keep_batches_per_reference_and_take_seeds_of_their_own() -> None:
    pieces = chunks.split([(0.1, 1_000, 5, 7)], 2)
    stride = chunks.SEED_STRIDE  # no chunk takes the seed of another run's (--seed 8)
    assert [piece.job for piece in pieces] == [
        (0.1, 400, 2, 7),
        (0.1, 400, 2, 7 + stride),
        (0.1, 200, 1, 7 + 2 * stride),
    ]
    whole = toy_cell(0.1, 1_000, 5, 7)
    merged = run_cells(toy_cell, [(0.1, 1_000, 5, 7)], options(chunk_references=2))[0]
    flags, (side, of), per_reference, seconds = merged
    assert len(flags) == 5 and per_reference == 200
    assert flags[:2] == whole[0][:2]  # chunk 0 draws what the unchunked run draws first
    assert side == [1] * 5 and of == [2] * 5
    assert seconds == pytest.approx((2 * 2.5 + 2 * 2.5 + 1 * 1.5) / 5)  # weighted by references


def test_merge_refuses_chunks_that_disagree_on_a_parameter() -> None:
    with pytest.raises(ValueError, match="disagree"):
        chunks.merge([([1], 100), ([0], 99)], [1, 1])
    assert chunks.merge([{"a": [1]}, {"a": [2, 3]}], [1, 2]) == {"a": [1, 2, 3]}


def test_a_stored_chunk_is_reused_while_its_sources_are_unchanged(tmp_path: Path) -> None:
    jobs = [(0.2, 600, 3, 11)]
    first = run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path))
    CALLS.clear()
    again = run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path))
    assert again == first and CALLS == []  # every chunk from the store, none run
    stored = chunk_files(tmp_path)
    assert len(stored) == 3
    assert len(list((tmp_path / "sources").glob("*.json"))) == 1  # kept once for the three
    files = sources_of(tmp_path, json.loads(stored[0].read_text()))
    assert "driftloop/__init__.py" in files
    assert "requirements.txt" in files
    assert files["version/numpy"] == np.__version__
    assert not any(name.startswith("benchmarks/support/chunks") for name in files)


def test_a_chunk_measured_by_other_code_is_run_again(tmp_path: Path) -> None:
    import driftloop.drift.engine  # noqa: F401  (a source the chunks then depend on)

    jobs = [(0.2, 600, 3, 11)]
    run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path))
    stored = chunk_files(tmp_path)
    record = json.loads(stored[0].read_text())
    files = sources_of(tmp_path, record)
    assert "driftloop/drift/engine.py" in files
    files["driftloop/drift/engine.py"] = "0" * 64  # as if engine.py had changed since
    (tmp_path / "sources" / "older.json").write_text(json.dumps(files))
    stored[0].write_text(json.dumps({**record, "sources": "older"}))
    CALLS.clear()
    again = run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path))
    assert len(CALLS) == 1  # that chunk alone, the other two from the store
    assert again == run_cells(toy_cell, jobs, options(chunk_references=1))
    assert json.loads(stored[0].read_text())["sources"] != "older"  # stored again, as run


def test_results_keep_the_jobs_order_with_two_workers(tmp_path: Path) -> None:
    jobs = [(0.1, 300, 3, 5), (0.4, 300, 3, 5), (0.2, 100, 1, 5)]
    two = run_cells(toy_cell, jobs, options(workers=2, chunk_references=1, store=tmp_path))
    assert two == run_cells(toy_cell, jobs, options(chunk_references=1))
    assert len(chunk_files(tmp_path)) == 7  # every chunk stored as it finished


def test_an_unreadable_chunk_is_run_again_and_a_result_json_cannot_keep_is_refused(
    tmp_path: Path,
) -> None:
    jobs = [(0.2, 200, 2, 3)]
    first = run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path))
    broken = chunk_files(tmp_path)[0]
    broken.write_text('{"key": ')  # as a disk that filled up mid-write would leave it
    CALLS.clear()
    assert run_cells(toy_cell, jobs, options(chunk_references=1, store=tmp_path)) == first
    assert len(CALLS) == 1
    assert json.loads(broken.read_text())["key"]  # written again, whole
    with pytest.raises(TypeError, match="keys must be strings"):
        chunks._plain({1: [0]})
    with pytest.raises(TypeError, match="ndarray"):
        chunks._plain(np.zeros(2))


def test_a_source_edited_during_the_run_stops_it_before_a_chunk_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "input.csv"
    data.write_text("a\n1\n")
    monkeypatch.setattr(chunks, "_INPUTS", set())
    monkeypatch.setattr(chunks, "_FIRST_SEEN", {})
    chunks.depends_on(data)
    assert str(data.resolve()) in chunks.sources()
    data.write_text("a\n2\n")  # the run read the old file; its chunks must not say otherwise
    with pytest.raises(RuntimeError, match="changed while this run went on"):
        chunks.sources()


def test_chunk_sizes_must_be_positive_and_the_store_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support.decisions import section_parser

    parser = section_parser("test")
    assert parser.parse_args(["--chunk-references", "3"]).chunk_references == 3
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--chunk-references", bad])
    assert "not a positive whole number" in capsys.readouterr().err
    assert parser.parse_args(["--store", str(tmp_path / "new")]).store == tmp_path / "new"
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        parser.parse_args(["--store", str(tmp_path / "file")])
    assert "the store is a directory" in capsys.readouterr().err
