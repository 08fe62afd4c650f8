"""Report formats of `imgcheck scan`: table, csv, json, jsonl, html, sarif, github.

The scan engine streams `ScanResult`s into one `Reporter` and calls `finish(summary)` at the
end::

    with atomic_output(path) as stream:              # path None -> stdout
        reporter = open_reporter(fmt, stream, threshold=t, model=name)
        for result in scan(...):                     # fill result.thumbnail if
            reporter.add(result)                     # reporter.needs_thumbnails
        reporter.finish(summary)

Each format lives in its own module and is imported only when chosen, so the cheap formats
never pay for Rich or PIL. No format imports onnxruntime or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from imgcheck.reports.atomic import atomic_output
from imgcheck.reports.base import Reporter
from imgcheck.reports.cells import safe_text

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["FORMATS", "Reporter", "atomic_output", "make_thumbnail", "open_reporter"]

FORMATS = ("table", "csv", "json", "jsonl", "html", "sarif", "github")


def open_reporter(
    fmt: str,
    stream: TextIO,
    *,
    threshold: float | None,
    model: str | None = None,
    console_width: int | None = None,
    model_info: dict[str, Any] | None = None,
) -> Reporter:
    """Start a report of format `fmt` on `stream` (headers are written right away).

    `threshold` and `model` are shown in headers and metadata; `console_width` overrides the
    detected terminal width of the table format (ignored by the others). `model_info`
    (`{"name", "sha256", "variant"}`) replaces `model` in the machine-readable formats (json,
    sarif), which must not carry a machine-specific path.
    """
    if model is not None:
        model = safe_text(model)
    described = model_info if model_info is not None else model
    if fmt == "csv":
        from imgcheck.reports.csv_report import CsvReporter

        return CsvReporter(stream)
    if fmt == "jsonl":
        from imgcheck.reports.json_report import JsonlReporter

        return JsonlReporter(stream)
    if fmt == "json":
        from imgcheck.reports.json_report import JsonReporter

        return JsonReporter(stream, threshold=threshold, model=described)
    if fmt == "table":
        from imgcheck.reports.table import TableReporter

        return TableReporter(stream, threshold=threshold, model=model, width=console_width)
    if fmt == "html":
        from imgcheck.reports.html_report import HtmlReporter

        return HtmlReporter(stream, threshold=threshold, model=model)
    if fmt == "sarif":
        from imgcheck.reports.sarif import SarifReporter

        return SarifReporter(stream, threshold=threshold, model=described)
    if fmt == "github":
        from imgcheck.reports.github import GithubReporter

        return GithubReporter(stream, threshold=threshold)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def make_thumbnail(image: Image.Image, max_side: int = 160) -> bytes:
    """Small JPEG of `image` for the HTML report (see `heatmap.make_thumbnail`)."""
    from imgcheck.reports.heatmap import make_thumbnail as _make

    return _make(image, max_side)
