"""`-o FILE` that never leaves a half-written report behind, and stdout as a report stream.

A CI job that reads `report.sarif` after a crashed or interrupted scan must find either the
previous complete file or nothing, never a truncated one. The file side is the shared atomic
writer (`imgcheck.detector.atomic.atomic_open`) as a UTF-8 text stream.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from imgcheck.detector.atomic import atomic_open


@contextlib.contextmanager
def _stdout() -> Iterator[TextIO]:
    """stdout for a report. A terminal gets `sys.stdout` itself (Rich detects it there). A pipe or
    redirect gets a UTF-8, untranslated (``newline=""``) view of the same buffer, so
    `imgcheck scan -f csv > out.csv` is the same bytes as ``-o out.csv`` even where the locale
    encoding is not UTF-8 or newlines would be translated (Windows); `sys.stdout` itself is not
    reconfigured."""
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None or out.isatty():
        yield out
        out.flush()
        return
    out.flush()
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield stream
    finally:
        stream.flush()
        stream.detach()  # leave sys.stdout's buffer open


@contextlib.contextmanager
def atomic_output(path: Path | None) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream for the report; `None` writes to stdout (left open).

    Files are opened with ``newline=""`` so the CSV writer's RFC 4180 CRLF line ends are
    written as they are. The target appears (or is replaced) only if the block succeeds; a
    symlink is written through and a device or FIFO in place (`imgcheck.detector.atomic`).
    """
    if path is None:
        with _stdout() as stream:
            yield stream
        return
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream
