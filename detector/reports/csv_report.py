"""CSV report: the stable machine contract `path,status,score,verdict,width,height,format,error`.

- Header row always, even for an empty scan, so `csv.DictReader` never guesses.
- RFC 4180: CRLF line ends, fields with commas, quotes or line breaks are quoted and inner quotes
  doubled (the stdlib writer). Open files with ``newline=""`` (`atomic_output` does).
- Formula injection: a relative path that starts with ``=``, ``+``, ``-``, ``@``, tab or CR is
  written as ``./-x.jpg`` (the same file, and text to a spreadsheet); other text cells (status,
  verdict, format, error) that start with one get a leading ``'`` (OWASP rule). Numeric cells (score, width,
  height) are written as plain numbers and never prefixed; score has 6 decimals, empty if none.
- Non-UTF-8 file names: undecodable bytes are written as ``\\xNN`` (see `cells.safe_text`).
- Each row is flushed as it is written, so `imgcheck scan -f csv | ...` streams.
"""

from __future__ import annotations

import csv
from typing import TextIO

from imgcheck.reports.base import finite
from imgcheck.reports.cells import csv_path, csv_text
from imgcheck.results import CSV_COLUMNS, ScanResult, Summary


class CsvReporter:
    needs_thumbnails = False

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._writer = csv.writer(stream, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self._writer.writerow(CSV_COLUMNS)
        stream.flush()

    def add(self, result: ScanResult) -> None:
        row = result.row()
        cells: list[str | int] = []
        for key in CSV_COLUMNS:
            value = row[key]
            if key == "score":
                score = finite(value)
                cells.append("" if score is None else f"{score:.6f}")
            elif value is None:
                cells.append("")
            elif isinstance(value, int | float):
                cells.append(value)
            elif key == "path":
                cells.append(csv_path(str(value)))
            else:
                cells.append(csv_text(str(value)))
        self._writer.writerow(cells)
        self._stream.flush()

    def finish(self, summary: Summary) -> None:
        """CSV has no footer (a trailing summary row would break the contract)."""
        self._stream.flush()
