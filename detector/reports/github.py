"""`--report github`: GitHub Actions workflow commands, like ruff's `--output-format github`.

One line per finding, which the Actions runner turns into an annotation on the file in the
pull request's "Files changed" tab (no code scanning needed, so private repositories without
GitHub Advanced Security see findings too)::

    ::error title=imgcheck IMG001 (colorized image),file=assets/a.jpg,line=1::Image looks ...
    ::warning title=imgcheck IMG002 (unreadable image),file=assets/b.jpg,line=1::Image could ...

- `file=` is relative to the repository root (git top level, else the working folder), which is
  what the runner resolves against `GITHUB_WORKSPACE`; `line=1` because annotations need a line.
- Values are escaped as the runner expects (`%` `\\r` `\\n` in the message; also `:` and `,` in
  properties), so a hostile file name cannot end the command early or inject another one.
- A flagged image the `--baseline` accepts gets no annotation (it does not fail the run either).
- `finish` writes one `::notice` with the summary.
"""

from __future__ import annotations

import os
from typing import TextIO

from imgcheck.reports.base import fmt_score
from imgcheck.reports.cells import safe_text
from imgcheck.results import ScanResult, Status, Summary


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubReporter:
    needs_thumbnails = False

    def __init__(self, stream: TextIO, *, threshold: float | None, root: str | None = None) -> None:
        from imgcheck.baseline import repo_root

        self._stream = stream
        self._threshold = threshold
        self._root = os.path.abspath(root) if root else repo_root()

    def _command(self, level: str, title: str, path: str, message: str) -> str:
        from imgcheck.baseline import repo_path

        file = safe_text(repo_path(path, self._root))
        props = f"title={escape_property(title)},file={escape_property(file)},line=1"
        return f"::{level} {props}::{escape_data(safe_text(message))}\n"

    def add(self, result: ScanResult) -> None:
        if result.flagged and not result.baselined:
            line = self._command(
                "error",
                "imgcheck IMG001 (colorized image)",
                result.path,
                f"Image looks AI-colorized: score {fmt_score(result.score)} >= threshold "
                f"{fmt_score(self._threshold)}. If it is accepted, add it to the baseline "
                "(imgcheck scan --write-baseline).",
            )
        elif result.status is Status.ERROR:
            line = self._command(
                "warning",
                "imgcheck IMG002 (unreadable image)",
                result.path,
                f"Image could not be read: {result.error or 'unknown error'}",
            )
        else:
            return
        self._stream.write(line)
        self._stream.flush()

    def finish(self, summary: Summary) -> None:
        flagged = summary.by_verdict.get("colorized", 0)
        text = (
            f"imgcheck: {summary.total} images, {flagged - summary.accepted} flagged"
            f"{f' ({summary.accepted} more accepted by the baseline)' if summary.accepted else ''}"
            f", {summary.by_status.get('error', 0)} unreadable"
        )
        self._stream.write(f"::notice title=imgcheck::{escape_data(text)}\n")
        self._stream.flush()
