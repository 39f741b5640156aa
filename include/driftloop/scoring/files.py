"""Reading a file to score in chunks and writing its answers as they come, so memory depends
on the chunk size, never on the file's. CSV in gives CSV out; Parquet in gives Parquet out."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftloop.data import parquet_batches
from driftloop.scoring.model import FeatureSchema

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class UnreadableFile(ValueError):
    """Not a CSV or Parquet file driftloop can read; the message says what is wrong."""


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnreadableFile(
            f"{path.name}: only CSV (.csv) and Parquet (.parquet) files can be scored"
        ) from None


def header(path: Path, separator: str = ",") -> list[str]:
    """The file's column names, read without reading its rows."""
    try:
        if file_format(path) == "csv":
            return [str(c) for c in pd.read_csv(path, nrows=0, sep=separator).columns]
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except UnreadableFile:
        raise
    except Exception as exc:
        raise UnreadableFile(f"{path.name} cannot be read: {exc}") from exc


@dataclass(frozen=True)
class Chunk:
    """Rows of a file, indexed by data row (0 = the first row after the header), and the lines
    that could not be split into the header's columns, by data row, with why."""

    frame: pd.DataFrame
    malformed: dict[int, str]


def chunks(path: Path, schema: FeatureSchema, rows: int, separator: str = ",") -> Iterator[Chunk]:
    """The file in chunks of about ``rows`` rows (see :class:`Chunk`)."""
    if file_format(path) == "csv":
        yield from _csv_chunks(path, schema, rows, separator)
        return
    start = 0
    try:
        for batch in parquet_batches(path, rows=rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield Chunk(frame, {})
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableFile(f"{path.name} cannot be read: {exc}") from exc


def _csv_chunks(path: Path, schema: FeatureSchema, rows: int, separator: str) -> Iterator[Chunk]:
    """CSV in blocks of whole lines, each parsed by Arrow with every column read as text: a
    numeric column converts in one cast, and only a column with a cell that is not a number
    stays text for the row-by-row check. Identifiers such as ``007`` come back out as they
    went in.

    One block is read at a time, so memory is one block whatever the file's size (Arrow's
    streaming reader reads ahead of its consumer, and pandas' chunked reader silently cuts a
    line with too many fields; here such a line is reported by Arrow's invalid-row handler).
    """
    import pyarrow.csv as pacsv

    columns = header(path, separator)
    options = (
        pacsv.ReadOptions(column_names=columns, use_threads=False),
        pacsv.ConvertOptions(
            column_types={column: pa.string() for column in columns}, strings_can_be_null=True
        ),
    )
    with path.open("rb") as handle:
        handle.readline()  # the header, read above
        numbered = 0  # data rows before this block, malformed lines included
        for block in _line_blocks(handle, _block_bytes(path, rows)):
            malformed: dict[int, str] = {}

            def bad_line(row: pacsv.InvalidRow, start: int = numbered, bad=malformed) -> str:
                # numbered from 1 within the block
                bad[start + (row.number or 1) - 1] = (
                    f"the line has {row.actual_columns} fields, the header {row.expected_columns}"
                )
                return "skip"

            parse = pacsv.ParseOptions(delimiter=separator, invalid_row_handler=bad_line)
            try:
                table = pacsv.read_csv(
                    pa.py_buffer(block),
                    read_options=options[0],
                    parse_options=parse,
                    convert_options=options[1],
                )
            except pa.ArrowException as exc:
                raise UnreadableFile(f"{path.name} cannot be read: {exc}") from exc
            frame = pd.DataFrame(
                {name: _column(table.column(name), name in schema.numeric) for name in columns}
            )
            frame.index, numbered = _data_rows(numbered, len(frame), malformed)
            yield Chunk(frame, malformed)


def _line_blocks(handle: Any, size: int) -> Iterator[bytes]:
    """The rest of the file in blocks of about ``size`` bytes, each ending with a whole line."""
    while True:
        block = handle.read(size)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += handle.readline()
        yield block


def _column(values: pa.Array, numeric: bool) -> Any:
    if not numeric:
        return values.to_numpy(zero_copy_only=False)
    try:
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # a cell that is not a number: the check names it
        return values.to_numpy(zero_copy_only=False)


def _data_rows(start: int, count: int, malformed: dict[int, str]) -> tuple[pd.Index, int]:
    """The data rows of the next ``count`` parsed rows (the next numbers not taken by a
    malformed line of the same block), and the first row of the next block."""
    if not malformed:
        return pd.RangeIndex(start, start + count), start + count
    rows, row = [], start
    while len(rows) < count:
        if row not in malformed:
            rows.append(row)
        row += 1
    return pd.Index(rows, dtype="int64"), max(row, max(malformed) + 1)


def _block_bytes(path: Path, rows: int) -> int:
    """Blocks of bytes sized from the file's first lines, so a block holds about ``rows``
    rows."""
    with path.open("rb") as handle:
        sample = handle.read(1 << 16)
    lines = max(sample.count(b"\n") - 1, 1)
    per_row = max(len(sample) // (lines + 1), 1)
    return min(max(per_row * rows, 1), 1 << 30)


class AnswerWriter:
    """Appends answered chunks to a staged file; ``commit`` renames it into place, so a reader
    never sees half an answer file and a failed run leaves none."""

    def __init__(self, path: Path, kind: str, separator: str = ",") -> None:
        self.path, self.kind, self.separator = path, kind, separator
        self.staged = path.with_name(path.name + ".part")
        self._writer: pa.ipc.RecordBatchWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            # a column that is empty in the first chunk would be typed "null" for good
            self._schema = pa.schema(
                [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            )
            self._writer = self._open(self._schema)
        self._writer.write_table(table.cast(self._schema))

    def _open(self, schema: pa.Schema):
        if self.kind == "csv":
            import pyarrow.csv as pacsv

            options = pacsv.WriteOptions(delimiter=self.separator)
            return pacsv.CSVWriter(str(self.staged), schema, write_options=options)
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(self.staged), schema)

    def commit(self) -> Path:
        if self._writer is not None:
            self._writer.close()
        self.staged.replace(self.path)
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.staged.unlink(missing_ok=True)


class RejectWriter:
    """The rows set aside, with their reasons, staged like the answers and kept only if there
    are any."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.staged = path.with_name(path.name + ".part")
        self.count = 0

    def write(self, rows: dict[int, list[str]]) -> None:
        if not rows:
            return
        with self.staged.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if not self.count:
                writer.writerow(["row", "reasons"])
            for row, reasons in sorted(rows.items()):
                writer.writerow([row, "; ".join(reasons)])
        self.count += len(rows)

    def commit(self) -> Path | None:
        if not self.count:
            return None
        self.staged.replace(self.path)
        return self.path

    def discard(self) -> None:
        self.staged.unlink(missing_ok=True)
