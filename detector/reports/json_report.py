"""JSON and JSON Lines reports, both streamed (rows are written as they come, never held).

- jsonl: one object per line: ``schema_version`` then exactly the CSV keys, flushed per row; no
  header or summary line, so every line has the same shape (`jq`, `pandas.read_json(lines=True)`).
- json: ``{"schema_version", "version", "threshold", "model", "results": [...], "summary": {...}}``
  where ``model`` is ``{"name", "sha256", "variant"}`` (never a machine-specific path). The document is
  written incrementally: the opening and each row on `add`, the closing and the summary on
  `finish`, so a huge scan needs no memory for it. Until `finish` the document is incomplete;
  with ``-o`` the atomic writer never exposes that state.

Text is valid UTF-8 (undecodable file-name bytes as ``\\xNN``); NaN scores become null.
"""

from __future__ import annotations

import json
from typing import TextIO

from imgcheck import __version__
from imgcheck.reports.base import SCHEMA_VERSION, finite, json_row, summary_dict
from imgcheck.results import ScanResult, Summary


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class JsonlReporter:
    needs_thumbnails = False

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def add(self, result: ScanResult) -> None:
        row = {"schema_version": SCHEMA_VERSION, **json_row(result)}
        self._stream.write(_dumps(row) + "\n")
        self._stream.flush()

    def finish(self, summary: Summary) -> None:
        self._stream.flush()


class JsonReporter:
    needs_thumbnails = False

    def __init__(
        self, stream: TextIO, *, threshold: float | None, model: dict[str, object] | str | None
    ) -> None:
        self._stream = stream
        self._count = 0
        head = {
            "schema_version": SCHEMA_VERSION,
            "version": __version__,
            "threshold": finite(threshold),
            "model": model,
        }
        # Everything but the closing brace, then the open results array.
        stream.write(_dumps(head)[:-1] + ', "results": [')
        stream.flush()

    def add(self, result: ScanResult) -> None:
        sep = "\n  " if self._count == 0 else ",\n  "
        self._stream.write(sep + _dumps(json_row(result)))
        self._count += 1
        self._stream.flush()

    def finish(self, summary: Summary) -> None:
        tail = "\n]" if self._count else "]"
        self._stream.write(f'{tail}, "summary": {_dumps(summary_dict(summary))}}}\n')
        self._stream.flush()
