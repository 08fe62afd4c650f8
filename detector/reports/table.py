"""Rich table for people at a terminal (the default format there).

Large runs: rows are *streamed*, not collected. They are buffered briefly and printed as chunks
of one table (`CHUNK_ROWS` rows, or sooner once `CHUNK_SECONDS` passed since the last print),
with fixed column widths and the header printed only once, so the chunks line up as one table
and memory stays bounded however many images are scanned. `finish` prints a footer with the
counts. Every row is shown: a person asking for the table wants to see each score; the flagged
subset is what `-f csv`/`sarif` plus the exit code are for.

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

_VERDICT_STYLE = {
    Verdict.COLORIZED: "bold red",
    Verdict.REAL: "green",
    Verdict.NOT_APPLICABLE: "dim",
}
# Fixed widths of the small columns; the path column takes the rest of the line.
_WIDTHS = {"status": 9, "score": 6, "verdict": 9, "size": 11, "format": 6}


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
        columns = len(_WIDTHS) + 2
        free = self._console.width - sum(_WIDTHS.values()) - (3 * columns - 3)
        # Paths are what every row has; notes only appear on error rows, and fold.
        note_width = max(8, free // 5)
        path_width = max(16, free - note_width)
        table = Table(
            box=box.SIMPLE_HEAD,
            show_header=not self._printed_header,
            show_edge=False,
            pad_edge=False,
            header_style="bold",
        )
        table.add_column("path", width=path_width, overflow="fold")
        table.add_column("status", width=_WIDTHS["status"])
        table.add_column("score", width=_WIDTHS["score"], justify="right")
        table.add_column("verdict", width=_WIDTHS["verdict"])
        table.add_column("size", width=_WIDTHS["size"], justify="right")
        table.add_column("format", width=_WIDTHS["format"])
        table.add_column("note", width=note_width, overflow="fold")
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
        if len(self._rows) >= CHUNK_ROWS or time.monotonic() - self._last_print >= CHUNK_SECONDS:
            self._flush()

    def finish(self, summary: Summary) -> None:
        self._flush()
        flagged = summary.by_verdict.get(Verdict.COLORIZED.value, 0)
        footer = Text()
        footer.append(f"{summary.total} images", style="bold")
        footer.append(" · ")
        footer.append(f"{flagged} colorized", style="bold red" if flagged else "green")
        for name in (Verdict.REAL.value,):
            footer.append(f" · {summary.by_verdict.get(name, 0)} {name}")
        for name in (Status.GRAYSCALE.value, Status.ERROR.value):
            count = summary.by_status.get(name, 0)
            if count:
                footer.append(f" · {count} {name}", style="red" if name == "error" else "")
        footer.append(
            f" · {summary.seconds:.1f} s ({summary.images_per_second:.1f} img/s, {summary.provider})",
            style="dim",
        )
        self._console.print(footer)
