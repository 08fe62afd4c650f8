"""The reporter protocol and the pieces every format shares (summary dict, header values)."""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

from imgcheck.reports.cells import safe_text
from imgcheck.results import ScanResult, Status, Summary, Verdict

#: Version of the machine-readable report layouts (json, jsonl, sarif run properties). Bumped
#: when a key is renamed, removed or changes meaning; new keys may appear without a bump.
SCHEMA_VERSION = 1


@runtime_checkable
class Reporter(Protocol):
    """A report format. `scan` calls `add` once per image as results stream in, then `finish`.

    Reporters never hold all results in memory: they write as rows arrive (or spool them to a
    temporary file), so a million-image scan costs the same memory as a ten-image one.
    """

    #: True if the format shows images; then scan fills `ScanResult.thumbnail`.
    needs_thumbnails: bool

    def add(self, result: ScanResult) -> None: ...

    def finish(self, summary: Summary) -> None: ...


def finite(value: float | None) -> float | None:
    """JSON has no NaN/Infinity: map them to null instead of emitting invalid JSON."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def json_row(result: ScanResult) -> dict[str, Any]:
    """`ScanResult.row()` with text made valid UTF-8 (see `cells.safe_text`)."""
    row = result.row()
    for key in ("path", "format", "error"):
        if isinstance(row[key], str):
            row[key] = safe_text(row[key])
    row["score"] = finite(row["score"])
    return row


def summary_dict(summary: Summary) -> dict[str, Any]:
    """The summary as plain JSON-able data (json footer, sarif properties). Every key is
    present even when its count is zero, so readers never need a default."""
    by_status = {s.value: summary.by_status.get(s.value, 0) for s in Status}
    by_verdict = {v.value: summary.by_verdict.get(v.value, 0) for v in Verdict}
    return {
        "total": summary.total,
        "by_status": by_status,
        "by_verdict": by_verdict,
        "flagged": by_verdict["colorized"],
        "accepted": summary.accepted,
        "errors": by_status["error"],
        "seconds": round(summary.seconds, 3),
        "images_per_second": round(summary.images_per_second, 2),
        "provider": summary.provider,
        "threshold": finite(summary.threshold),
    }


def fmt_score(score: float | None, digits: int = 3) -> str:
    """Score for humans ('0.912'), or 'n/a'."""
    value = finite(score)
    return "n/a" if value is None else f"{value:.{digits}f}"
