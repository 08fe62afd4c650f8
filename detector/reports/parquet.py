r"""Parquet: scan rows as Arrow tables, one file or a folder of parts, for catalogs too big for CSV.

- Columns: the CSV contract `path,status,score,verdict,width,height,format,error` with typed
  values (score float64, width/height int64, empty cells null), plus `sha256` (content hash of
  flagged images, as the baseline and SARIF use it). The file's key-value metadata holds
  `imgcheck.schema_version`, the model (`{"name","sha256","variant"}`), the threshold and, at
  the end, the summary (single file only).
- `-o scan.parquet` (a name ending in `.parquet`) is one file, written atomically with a row
  group every `ROW_GROUP` rows, so memory stays flat. Any other `-o` is a **folder of parts**
  (`part-<run>-<seq>.parquet`, each written atomically, readable as one dataset by pyarrow,
  pandas, DuckDB, Spark or Ray): parts appear while the scan runs, `_SUCCESS` when it is done,
  and a rerun of an unfinished folder resumes it (`imgcheck.journal`).
- Text is valid UTF-8: a non-UTF-8 file name is written as `\xNN` escapes (`cells.safe_text`),
  as in every other format.
- The same conversion (`to_table` / `from_table`, `full=True` adding the HTML report's
  thumbnail and heatmap data) carries rows from Ray workers to the driver and into the resume
  journal, so what comes back is exactly the row that left.

pyarrow is imported only here, only when a parquet report, the journal or the Ray engine runs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from imgcheck.reports.base import SCHEMA_VERSION, summary_dict
from imgcheck.reports.cells import safe_text
from imgcheck.results import ScanResult, Summary

ROW_GROUP = 10_000  # rows per row group of a single file (and per part of a folder, by default)
PART_SECONDS = 10.0  # a folder part is also written when this long has passed since the last
SUCCESS = "_SUCCESS"
PART_PREFIX = "part-"


def pyarrow() -> Any:
    """`pyarrow` and `pyarrow.parquet`, or one clear error naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError:
        from imgcheck.session import ModelError  # one line and exit 2, like a missing runtime

        raise ModelError(
            "parquet reports need pyarrow: pip install 'imgcheck-colorize[ray]' (or pyarrow)"
        ) from None
    return pa


_TYPED = {"score": "float64", "width": "int64", "height": "int64"}  # other row cells: text
_EXACT = ("patch_maps", "boxes", "view_size", "thumbnail")  # not plain JSON values


def columns() -> tuple[str, ...]:
    """The report's columns: the CSV contract (`results.CSV_COLUMNS`, whatever it holds now)
    plus `sha256`."""
    from imgcheck.results import CSV_COLUMNS

    return (*CSV_COLUMNS, "sha256")


def schema(full: bool = False) -> Any:
    pa = pyarrow()
    cols = [pa.field(name, getattr(pa, _TYPED.get(name, "string"))()) for name in columns()]
    if full:  # every other field of the row (heatmap data, ...) and the thumbnail
        cols += [pa.field("thumbnail", pa.binary()), pa.field("fields", pa.string())]
    return pa.schema(cols)


def _plain(value: Any) -> Any:
    """A ScanResult field value as JSON (enums by value, arrays and tuples as lists)."""
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "tolist"):  # numpy
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fields_json(result: ScanResult) -> str:
    data = {
        f.name: _plain(getattr(result, f.name))
        for f in dataclasses.fields(result)
        if f.name != "thumbnail"
    }
    return json.dumps(data)


@functools.lru_cache(maxsize=1)
def _enum_fields() -> dict[str, type[Enum]]:
    """Field name -> its Enum class (`Status`, `Verdict`, `Stage`...), from the type hints."""
    import typing

    out: dict[str, type[Enum]] = {}
    for name, hint in typing.get_type_hints(ScanResult).items():
        for t in (hint, *typing.get_args(hint)):
            if isinstance(t, type) and issubclass(t, Enum):
                out[name] = t
    return out


def _result(values: dict[str, Any]) -> ScanResult:
    """A ScanResult from field values (unknown names are ignored, missing ones default)."""
    known = {f.name for f in dataclasses.fields(ScanResult)}
    enums = _enum_fields()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known or name in _EXACT:
            continue
        if value is not None and name in enums:
            value = enums[name](value)
        kwargs[name] = value
    result = ScanResult(**kwargs)
    if values.get("boxes"):
        result.boxes = [tuple(b) for b in values["boxes"]]
    if values.get("view_size"):
        result.view_size = tuple(values["view_size"])
    if values.get("patch_maps"):
        import numpy as np

        result.patch_maps = [np.asarray(m, dtype=np.float32) for m in values["patch_maps"]]
    return result


def _text(value: Any) -> str | None:
    return None if value is None else safe_text(str(value))


def to_table(
    results: Sequence[ScanResult], *, full: bool = False, extra: dict[str, Any] | None = None
) -> Any:
    """Rows as an Arrow table (`full`: exactly, every field; `extra`: more columns, e.g. the
    Ray engine's listing index)."""
    pa = pyarrow()
    rows = [r.row() for r in results]
    data: dict[str, list[Any]] = {}
    for name in columns():
        if name == "sha256":
            data[name] = [r.sha256 for r in results]
        elif name in _TYPED:
            data[name] = [row.get(name) for row in rows]
        else:
            data[name] = [_text(row.get(name)) for row in rows]
    if full:
        data["thumbnail"] = [r.thumbnail for r in results]
        data["fields"] = [_fields_json(r) for r in results]
    table = pa.Table.from_pydict(data, schema=schema(full))
    for name, values in (extra or {}).items():
        column = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
        table = table.append_column(name, column)
    return table


def from_table(table: Any) -> list[ScanResult]:
    """`to_table` read back: exactly from `fields` where present, else from the row columns."""
    cols = table.to_pydict()
    n = table.num_rows
    packed_col = cols.get("fields") or [None] * n
    thumbs = cols.get("thumbnail") or [None] * n
    out = []
    for i in range(n):
        packed = packed_col[i]
        values = json.loads(packed) if packed else {k: v[i] for k, v in cols.items()}
        result = _result(values)
        result.sha256 = cols["sha256"][i] if "sha256" in cols else values.get("sha256")
        result.thumbnail = thumbs[i]
        out.append(result)
    return out


def _metadata(model: dict[str, Any] | None, threshold: float | None) -> dict[bytes, bytes]:
    meta = {
        b"imgcheck.schema_version": str(SCHEMA_VERSION).encode(),
        b"imgcheck.threshold": json.dumps(threshold).encode(),
    }
    if model is not None:
        meta[b"imgcheck.model"] = json.dumps(model).encode()
    return meta


class ParquetReporter:
    """`-o scan.parquet`: one file on a binary stream (the CLI's atomic writer)."""

    needs_thumbnails = False

    def __init__(
        self,
        stream: BinaryIO,
        *,
        threshold: float | None,
        model: dict[str, Any] | None = None,
        row_group: int = ROW_GROUP,
    ) -> None:
        import pyarrow.parquet as pq

        self._schema = schema().with_metadata(_metadata(model, threshold))
        self._writer = pq.ParquetWriter(stream, self._schema)
        self._rows: list[ScanResult] = []
        self._row_group = row_group

    def add(self, result: ScanResult) -> None:
        self._rows.append(result)
        if len(self._rows) >= self._row_group:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(to_table(self._rows).replace_schema_metadata(None))
            self._rows = []

    def finish(self, summary: Summary) -> None:
        self._flush()
        self._writer.add_key_value_metadata(
            {"imgcheck.summary": json.dumps(summary_dict(summary))}
        )
        self._writer.close()


def part_files(folder: Path) -> list[Path]:
    """The finished parts in a folder, oldest run first (names sort by run, then sequence)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / n for n in sorted(names) if n.startswith(PART_PREFIX) and n.endswith(".parquet")]


def read_parts(folder: Path) -> Iterator[ScanResult]:
    import pyarrow.parquet as pq

    pyarrow()
    for part in part_files(folder):
        yield from from_table(pq.read_table(part))


class PartsWriter:
    """Rows into `folder` as parts, each written atomically (tmp + fsync + rename): a killed
    writer leaves whole parts only. A part is written every `rows` rows or `seconds` seconds
    (so a slow scan still saves its work), and at `close`."""

    def __init__(
        self,
        folder: Path,
        *,
        full: bool = False,
        rows: int | None = None,
        seconds: float = PART_SECONDS,
        metadata: dict[bytes, bytes] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.full = full
        env = os.environ.get("IMGCHECK_PART_ROWS", "")
        self.rows = rows or (int(env) if env.isdigit() and int(env) > 0 else ROW_GROUP)
        self.seconds = seconds
        self.metadata = metadata
        self.run = f"{int(time.time() * 1000):013d}-{os.getpid()}"
        self._seq = 0
        self._pending: list[ScanResult] = []
        self._last = time.monotonic()
        self.written = 0

    def add(self, result: ScanResult) -> None:
        self._pending.append(result)
        if len(self._pending) >= self.rows or time.monotonic() - self._last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self._pending:
            return
        import pyarrow.parquet as pq

        from imgcheck.atomic import atomic_write

        table = to_table(self._pending, full=self.full)
        if self.metadata:
            table = table.replace_schema_metadata(self.metadata)
        name = f"{PART_PREFIX}{self.run}-{self._seq:06d}.parquet"
        atomic_write(self.folder / name, lambda fh: pq.write_table(table, fh))
        self._seq += 1
        self.written += len(self._pending)
        self._pending = []

    def close(self) -> None:
        self.flush()


class ParquetFolderReporter:
    """`--report parquet -o FOLDER`: the rows are the folder's parts, written by the journal
    (`imgcheck.journal`) as they come; this reporter only marks the folder done."""

    needs_thumbnails = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, result: ScanResult) -> None:  # the journal already wrote it
        pass

    def finish(self, summary: Summary) -> None:
        pass


def is_single_file(output: Path) -> bool:
    """`-o x.parquet` is one file; any other name is a folder of parts."""
    return output.suffix.lower() == ".parquet" and not output.is_dir()


def iter_rows(paths: Iterable[Path]) -> Iterator[ScanResult]:
    """Rows of parquet files or folders written by imgcheck (tests and tools)."""
    import pyarrow.parquet as pq

    pyarrow()
    for path in paths:
        if Path(path).is_dir():
            yield from read_parts(Path(path))
        else:
            yield from from_table(pq.read_table(path))
