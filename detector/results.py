"""The one result type behind every report format (table, csv, json, jsonl, html, sarif).

`CSV_COLUMNS` is a documented, stable contract: tools parse it, so never reorder or rename;
a new column is only ever appended (round 2 appended `stage`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    OK = "ok"
    GRAYSCALE = (
        "grayscale"  # not applicable: a grayscale image is neither real colour nor colorized
    )
    ERROR = "error"
    # Not applicable: fewer pixels than the detector's tile on a side (`scanning.min_side`), so
    # any score would come from an upscaled image, and real thumbnails score high there.
    TOO_SMALL = "too_small"


class Verdict(str, Enum):
    COLORIZED = "colorized"
    REAL = "real"
    NOT_APPLICABLE = "n/a"  # grayscale, too-small or error rows


CSV_COLUMNS = (
    "path",
    "status",
    "score",
    "verdict",
    "width",
    "height",
    "format",
    "error",
    "stage",
)


class Stage(str, Enum):
    """Which model decided an ok row: the cascade's cheap screen (the image scored below the
    screen threshold, so the detector never ran; `score` is the screen's) or the detector."""

    SCREEN = "screen"
    DETECTOR = "detector"


@dataclass
class ScanResult:
    """One row of a scan. `path` is the path as the user gave or as found under a folder."""

    path: str
    status: Status
    score: float | None = None  # probability that the image was colorized; None unless status ok
    verdict: Verdict = Verdict.NOT_APPLICABLE
    width: int | None = None
    height: int | None = None
    format: str | None = None  # decoder's format name, e.g. JPEG, PNG
    error: str | None = None  # human-readable message for status error
    stage: Stage | None = None  # which model decided (ok rows only)
    # Not part of the CSV contract: per-crop patch maps for HTML heatmaps, in view coordinates.
    patch_maps: list[Any] = field(default_factory=list, repr=False)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)
    view_size: tuple[int, int] | None = field(default=None, repr=False)
    # Small JPEG of the image for the HTML report; only filled when a report asks for it.
    thumbnail: bytes | None = field(default=None, repr=False)
    # Content sha256, filled by `scan` for flagged and unreadable images (SARIF fingerprints,
    # baseline); `baselined` is True for a flagged image the --baseline file accepts.
    sha256: str | None = field(default=None, repr=False)
    baselined: bool = field(default=False, repr=False)

    @property
    def flagged(self) -> bool:
        return self.status is Status.OK and self.verdict is Verdict.COLORIZED

    def row(self) -> dict[str, Any]:
        """The CSV/JSON row, keys exactly `CSV_COLUMNS`."""
        score = None if self.score is None or math.isnan(self.score) else round(self.score, 6)
        return {
            "path": self.path,
            "status": self.status.value,
            "score": score,
            "verdict": self.verdict.value,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "error": self.error,
            "stage": None if self.stage is None else self.stage.value,
        }


@dataclass
class Summary:
    """Counts that end every run (the summary line) and feed the report footers."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_verdict: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    provider: str = "cpu"  # the ONNX Runtime provider that really ran
    variant: str = "fp32"  # the detector build that ran (fp32 = the calibrated model)
    threshold: float | None = None
    accepted: int = 0  # flagged images the --baseline accepts (they do not fail the run)

    def add(self, result: ScanResult) -> None:
        self.total += 1
        self.by_status[result.status.value] = self.by_status.get(result.status.value, 0) + 1
        self.by_verdict[result.verdict.value] = self.by_verdict.get(result.verdict.value, 0) + 1

    @property
    def images_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0
