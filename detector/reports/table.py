"""Rich table for people at a terminal (the default format there).

Large runs: rows are *streamed*, not collected. They are buffered briefly and printed as chunks
of one table (`CHUNK_ROWS` rows, or sooner once `CHUNK_SECONDS` passed since the last print),
with fixed column widths and the header printed only once, so the chunks line up as one table
and memory stays bounded however many images are scanned. The counts are not repeated under
the table: scan's summary line (stderr) is the one summary. Every row is shown: a person asking for the table wants to see each score; the flagged
subset is what `-f csv`/`sarif` plus the exit code are for.

On a terminal the path column takes the width the terminal has and folds long names. Piped or
written to a file (`| cat`, `-o report.txt`), nothing wraps: the path and note columns are as
wide as the longest value so far (a later, longer one widens its own chunk), so each row stays
one line that `grep` and `cut` can read; nobody watches a pipe live, so it is printed in chunks
of `PIPED_CHUNK_ROWS` rows.

File names are shown through `cells.printable` (control characters escaped, so a name can hold
neither a newline that breaks the layout nor an ANSI sequence that drives the terminal) and as
`rich.text.Text`, so ``[bold]`` in a name is not read as markup.
"""

from __future__ import annotations

import time
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from imgcheck.reports.base import fmt_score
from imgcheck.reports.cells import printable
from imgcheck.results import ScanResult, Status, Summary, Verdict

CHUNK_ROWS = 64
CHUNK_SECONDS = 1.0
PIPED_CHUNK_ROWS = 1024

_VERDICT_STYLE = {
    Verdict.COLORIZED: "bold red",
    Verdict.REAL: "green",
    Verdict.NOT_APPLICABLE: "dim",
}
# Fixed widths of the small columns; the path column takes the rest of the line.
_WIDTHS = {"status": 9, "score": 6, "verdict": 9, "size": 11, "format": 6}
_UNBOUNDED = 1 << 20  # console width for a pipe or file: lines are as long as their cells


class TableReporter:
    needs_thumbnails = False

    def __init__(
        self,
        stream: TextIO,
        *,
        threshold: float | None,
        model: str | None = None,
        width: int | None = None,
    ) -> None:
        self._console = Console(file=stream, width=width, highlight=False, soft_wrap=False)
        # Not a terminal and no width asked for: fit the values instead of a guessed 80 columns.
        self._fit = width is None and not self._console.is_terminal
        if self._fit:
            self._console = Console(file=stream, width=_UNBOUNDED, highlight=False)
        self._path_width = 16
        self._note_width = 8
        self._rows: list[ScanResult] = []
        self._printed_header = False
        self._last_print = time.monotonic()
        head = f"threshold {fmt_score(threshold)}"
        if model:
            head += f" · model {printable(model)}"
        self._console.print(Text(head, style="dim"))

    def _table(self) -> Table:
        # Column widths are fixed so that separately printed chunks line up as one table.
        # 7 columns: 1 space of padding each side (none at the outer edges), 1-space dividers.
        if self._fit:
            self._path_width = max([self._path_width, *(len(printable(r.path)) for r in self._rows)])
            notes = (len(printable(r.error or "")) for r in self._rows)
            self._note_width = max([self._note_width, *notes])
            path_width, note_width, overflow = self._path_width, self._note_width, "ignore"
        else:
            columns = len(_WIDTHS) + 2
            free = self._console.width - sum(_WIDTHS.values()) - (3 * columns - 3)
            # Paths are what every row has; notes only appear on error rows, and fold.
            note_width = max(8, free // 5)
            path_width = max(16, free - note_width)
            overflow = "fold"
        table = Table(
            box=box.SIMPLE_HEAD,
            show_header=not self._printed_header,
            show_edge=False,
            pad_edge=False,
            header_style="bold",
        )
        table.add_column("path", width=path_width, overflow=overflow, no_wrap=self._fit)
        table.add_column("status", width=_WIDTHS["status"])
        table.add_column("score", width=_WIDTHS["score"], justify="right")
        table.add_column("verdict", width=_WIDTHS["verdict"])
        table.add_column("size", width=_WIDTHS["size"], justify="right")
        table.add_column("format", width=_WIDTHS["format"])
        table.add_column("note", width=note_width, overflow=overflow, no_wrap=self._fit)
        return table

    def _flush(self) -> None:
        if not self._rows:
            return
        table = self._table()
        for r in self._rows:
            size = f"{r.width}x{r.height}" if r.width and r.height else ""
            style = _VERDICT_STYLE.get(r.verdict, "")
            table.add_row(
                Text(printable(r.path)),
                Text(r.status.value, style="red" if r.status is Status.ERROR else ""),
                Text(fmt_score(r.score) if r.score is not None else "", style=style),
                Text(r.verdict.value, style=style),
                Text(size),
                Text(printable(r.format or "")),
                Text(printable(r.error or ""), style="red"),
            )
        self._console.print(table)
        self._printed_header = True
        self._rows.clear()
        self._last_print = time.monotonic()

    def add(self, result: ScanResult) -> None:
        self._rows.append(result)
        if self._fit:
            if len(self._rows) >= PIPED_CHUNK_ROWS:
                self._flush()
        elif len(self._rows) >= CHUNK_ROWS or time.monotonic() - self._last_print >= CHUNK_SECONDS:
            self._flush()

    def finish(self, summary: Summary) -> None:
        self._flush()
