"""`scan -o FILE`: refuse a report path that would destroy something that is not a report.

Checked before the model loads and before any image is read (exit 2, one line):

- **Never over an input.** The report may not be one of the inputs: the same file by identity
  (device + inode, so hard links and symlinks count) as a file named on the command line, or an
  image file inside a folder being scanned (what the walk would find). Refused even with
  `--force`: there is no good reason to replace a photo with a CSV.
- **Only over our own reports.** An existing regular file must be empty or look like a report
  imgcheck wrote (the CSV header, a JSON Lines row with path/status/verdict, the JSON report's
  head, or SARIF or HTML naming imgcheck in its first 64 KiB); anything else needs `--force`.

Devices, FIFOs and `/dev/...` paths are written in place and are not checked. Standard library
only (imported by the CLI module before anything heavy).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from imgcheck.atomic import writes_in_place
from imgcheck.files import open_regular
from imgcheck.inputs import IMAGE_EXTENSIONS, SNIFF_BYTES, sniff

HEAD_BYTES = 65536
_CSV_HEADER = b"path,status,score,verdict"


def looks_like_our_report(head: bytes) -> bool:
    """True for the start of a report that imgcheck scan writes (any format), or nothing."""
    text = head.lstrip()
    if not text or head.startswith(_CSV_HEADER):
        return True
    if text[:1] in (b"{", b"<") and b"imgcheck" in head:  # SARIF, HTML
        return True
    if text.startswith(b'{"schema_version"') and b'"results"' in head:  # the JSON report
        return True
    first = text.split(b"\n", 1)[0]
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and {"path", "status", "verdict"} <= row.keys()


def _is_image(path: str) -> bool:
    if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
        return True
    try:
        with open_regular(path) as fh:
            return sniff(fh.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def report_target_problem(output: Path, inputs: Iterable[str], *, force: bool) -> str | None:
    """Why `output` must not be written (a one-line message), or None if it may be."""
    if writes_in_place(output):
        return None
    try:
        st = os.stat(output)  # follows a symlink: what would be replaced is its target
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot use -o {output}: {(exc.strerror or str(exc)).lower()}"
    if not stat.S_ISREG(st.st_mode):
        return None  # a folder is refused later with its own message
    real = os.path.realpath(output)
    for arg in inputs:
        if arg == "-":
            continue
        try:
            other = os.stat(arg)
        except OSError:
            continue  # a glob or a missing path: the folder/glob walk cannot find -o anyway
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return f"-o {output} is one of the inputs ({arg}); refusing to overwrite it"
        if stat.S_ISDIR(other.st_mode) and _inside(real, os.path.realpath(arg)) and _is_image(real):
            return f"-o {output} is an image inside the scanned folder {arg}; refusing to overwrite it"
    if force:
        return None
    try:
        with open_regular(real) as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        return f"cannot read -o {output}: {(exc.strerror or str(exc)).lower()}"
    if looks_like_our_report(head):
        return None
    return (
        f"-o {output} exists and is not an imgcheck report; refusing to overwrite it "
        "(remove it, choose another -o, or add --force)"
    )
