"""Sample scan results for the report tests: every status, hostile and non-UTF-8 names."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from imgcheck.results import ScanResult, Status, Summary, Verdict

# The bytes b"bad\xff\xfe.jpg" as os.fsdecode gives them on a UTF-8 system (PEP 383 surrogates).
NON_UTF8 = (
    os.fsdecode(b"photos/bad\xff\xfe.jpg") if os.name != "nt" else "photos/bad\udcff\udcfe.jpg"
)
HOSTILE = [
    "a,b.jpg",
    'say "hi".png',
    "multi\nline.jpg",
    "=cmd|' /C calc'!A0.jpg",
    "+1.jpg",
    "-x.jpg",
    "@a.jpg",
    "<script>alert(1)</script>&.jpg",
    "\ttab.jpg",
    "ünïcødé 猫.jpg",
]


def small_jpeg(w: int = 40, h: int = 30) -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")
    out = io.BytesIO()
    img.save(out, "JPEG")
    return out.getvalue()


def flagged(path: str = "imgs/colorized.jpg", score: float = 0.91) -> ScanResult:
    """A colorized verdict with two 4x4 patch maps over a 2-crop 96x64 view."""
    maps = [np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), np.full((4, 4), 0.9, np.float32)]
    return ScanResult(
        path=path,
        status=Status.OK,
        score=score,
        verdict=Verdict.COLORIZED,
        width=1920,
        height=1280,
        format="JPEG",
        patch_maps=maps,
        boxes=[(0, 0, 64, 64), (32, 0, 96, 64)],
        view_size=(96, 64),
        thumbnail=small_jpeg(48, 32),
    )


def sample_results() -> list[ScanResult]:
    """ok/colorized, ok/real, grayscale, error, None score, hostile and non-UTF-8 names."""
    rows = [
        flagged(),
        ScanResult("imgs/real.png", Status.OK, 0.12, Verdict.REAL, 640, 480, "PNG"),
        ScanResult("imgs/grey.jpg", Status.GRAYSCALE, None, Verdict.NOT_APPLICABLE, 10, 10, "JPEG"),
        ScanResult("imgs/broken.jpg", Status.ERROR, error="cannot identify image file"),
        ScanResult(NON_UTF8, Status.OK, 0.5, Verdict.REAL, 32, 32, "PNG"),
        ScanResult("nan.jpg", Status.OK, float("nan"), Verdict.NOT_APPLICABLE, 32, 32, "JPEG"),
    ]
    for i, name in enumerate(HOSTILE):
        rows.append(
            flagged(name, 0.6 + i / 100)
            if i % 2
            else ScanResult(name, Status.OK, 0.2, Verdict.REAL, 8, 8, "PNG")
        )
    rows.append(ScanResult("=err.jpg", Status.ERROR, error='=HYPERLINK("http://x")'))
    return rows


def summary_of(rows: list[ScanResult], threshold: float = 0.5) -> Summary:
    summary = Summary(seconds=1.5, provider="cpu", threshold=threshold)
    for r in rows:
        summary.add(r)
    return summary
