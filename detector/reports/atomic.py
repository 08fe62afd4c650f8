"""`-o FILE` that never leaves a half-written report behind.

A CI job that reads `report.sarif` after a crashed or interrupted scan must find either the
previous complete file or nothing, never a truncated one. So the report goes to a temporary file
in the same folder (same file system, so `os.replace` is an atomic rename) and replaces the
target only when the whole report was written; on any exception the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def _create_temp(target: Path) -> tuple[Path, int]:
    # os.open with mode 0o666 lets the umask decide the permissions, like a plain open() would;
    # tempfile.mkstemp would create 0600 files that surprise whoever reads the report later.
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {target}")


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
    written as they are. The target appears (or is replaced) only if the block succeeds.
    """
    if path is None:
        with _stdout() as stream:
            yield stream
        return
    target = Path(path)
    tmp, fd = _create_temp(target)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
