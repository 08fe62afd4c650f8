"""What a person watching `imgcheck scan` sees besides the report: a live bar and a summary line.

The bar (count, flagged and unreadable so far, images/s, elapsed) is a transient Rich progress
display that is off when its console is not interactive (CI logs, pipes) or with `--quiet`; off,
it costs the loop nothing. The total is unknown on purpose: counting the files first would walk a huge tree
twice. When the report itself goes to the same terminal (the table), the report is printed
through the bar's console so rows scroll above the bar instead of tearing it.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from imgcheck.results import ScanResult, Status, Summary, Verdict

RATE_AFTER_SECONDS = 1.0  # no rate before this: two images 13 us apart are not 75,000/s


class _RateColumn(ProgressColumn):
    """Images per second since the scan started. Rich's own `task.speed` is an estimate over
    the last few updates, which at the start (a batch of results arriving together) reads tens
    of thousands of images/s; the overall average is what the summary line reports too."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed or 0.0
        if elapsed < RATE_AFTER_SECONDS or not task.completed:
            return Text("- images/s", style="cyan")
        return Text(f"{task.completed / elapsed:.1f} images/s", style="cyan")


class ScanProgress:
    """Context manager: `advance(result)` per row; `report_stream(stdout)` for a terminal report."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("scanning"),
            TextColumn("{task.completed} images"),
            TextColumn("[red]{task.fields[flagged]} flagged"),
            TextColumn("[yellow]{task.fields[errors]} errors"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (enabled and console.is_interactive),
            redirect_stdout=False,  # we route the report ourselves (see report_stream)
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("scan", total=None, flagged=0, errors=0)
        self._flagged = 0
        self._errors = 0

    @property
    def active(self) -> bool:
        return not self._progress.disable

    def report_stream(self, stream: TextIO) -> TextIO:
        """`stream` itself, or a proxy printing above the bar when both share the terminal."""
        if self.active and stream.isatty():
            return FileProxy(self.console, stream)
        return stream

    def advance(self, result: ScanResult) -> None:
        self._flagged += result.flagged
        self._errors += result.status is Status.ERROR
        self._progress.update(self._task, advance=1, flagged=self._flagged, errors=self._errors)

    def __enter__(self) -> ScanProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()


def summary_line(summary: Summary) -> str:
    """`imgcheck: 269 images in 2.1 s (126.4 images/s, cpu, threshold 0.500): 3 colorized, ...`.

    A detector variant other than fp32 is named after the provider: `(..., cpu, int8, ...)`.
    """
    status, verdict = summary.by_status, summary.by_verdict
    parts = [
        f"{verdict.get(Verdict.COLORIZED.value, 0)} colorized"
        + (f" ({summary.accepted} accepted by the baseline)" if summary.accepted else ""),
        f"{verdict.get(Verdict.REAL.value, 0)} real",
        f"{status.get(Status.GRAYSCALE.value, 0)} grayscale (n/a)",
        *(
            [f"{status[Status.TOO_SMALL.value]} too small (n/a)"]
            if status.get(Status.TOO_SMALL.value)
            else []
        ),
        f"{status.get(Status.ERROR.value, 0)} errors",
    ]
    threshold = "" if summary.threshold is None else f", threshold {summary.threshold:.3f}"
    variant = "" if summary.variant == "fp32" else f", {summary.variant}"
    return (
        f"imgcheck: {summary.total} images in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.1f} images/s, {summary.provider}{variant}{threshold}): "
        + ", ".join(parts)
    )
