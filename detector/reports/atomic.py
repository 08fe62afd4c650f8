"""`-o FILE` that never leaves a half-written report behind, and stdout as a report stream.

A CI job that reads `report.sarif` after a crashed or interrupted scan must find either the
previous complete file or nothing, never a truncated one. The file side is the shared atomic
writer (`imgcheck.atomic.atomic_open`) as a UTF-8 text stream.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from imgcheck.atomic import atomic_open
from imgcheck.terminal import printable_lines


class _TerminalSafe(io.TextIOBase):
    """A machine-format report shown on a terminal: each line through `terminal.printable`
    (ESC sequences in file names shown as ``\x1b``), line ends kept, written as bytes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:  # type: ignore[override]
        self._stream.write(printable_lines(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


@contextlib.contextmanager
def _stdout(rich_terminal: bool = False) -> Iterator[TextIO]:
    """stdout for a report. With `rich_terminal` (the table) a terminal gets `sys.stdout` itself
    (Rich detects it there). Anything else gets a UTF-8, untranslated (``newline=""``) view of
    the same buffer, so `imgcheck scan -f csv > out.csv` is the same bytes as ``-o out.csv``
    even where the locale encoding is not UTF-8 or newlines would be translated (Windows);
    never Rich, whose ANSI decoder would drop CRLF rows. On a terminal, that view escapes
    control characters (`terminal.printable`). `sys.stdout` itself is not reconfigured."""
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None or (rich_terminal and out.isatty()):
        yield out
        out.flush()
        return
    tty = out.isatty()
    out.flush()
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield _TerminalSafe(stream) if tty else stream  # type: ignore[misc]
    finally:
        stream.flush()
        stream.detach()  # leave sys.stdout's buffer open


@contextlib.contextmanager
def atomic_output(path: Path | None, *, rich_terminal: bool = False) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream for the report; `None` writes to stdout (left open;
    `rich_terminal`: the caller renders with Rich, so a terminal gets `sys.stdout` itself).

    Files are opened with ``newline=""`` so the CSV writer's RFC 4180 CRLF line ends are
    written as they are. The target appears (or is replaced) only if the block succeeds; a
    symlink is written through and a device or FIFO in place (`imgcheck.atomic`).
    """
    if path is None:
        with _stdout(rich_terminal) as stream:
            yield stream
        return
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream
