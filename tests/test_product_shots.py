"""The shipped detector on product shots: a photo on a wide white canvas is judged by the photo.

Before the content gate (run v16), the white margins' tiles scored above the threshold on
their own, and real photos pasted at 0.35 of the canvas side were flagged (3 of these 4
examples). Uses the committed examples and the shipped models only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the cpu extra)")

from imgcheck.models import DEFAULT_DIR, MANIFEST, resolve
from imgcheck.results import Verdict
from imgcheck.scanning import scan
from imgcheck.trainer.canvas import on_canvas  # Pillow only: no torch

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "catalog"
SHIPPED = (DEFAULT_DIR / MANIFEST).is_file()
# Not real-03: a nearly colourless night photo, flagged on its own already (README).
REAL = ["real-01.jpg", "real-02.jpg", "real-06.jpg", "real-08.jpg"]


def _on_canvas(src: Path, dst: Path, side: float) -> Path:
    on_canvas(Image.open(src).convert("RGB"), side, 255, oval=False).save(dst)
    return dst


@pytest.mark.skipif(not SHIPPED, reason="no shipped models in this checkout")
def test_real_photos_on_a_wide_white_canvas_are_not_flagged(tmp_path: Path) -> None:
    paths = [_on_canvas(CATALOG / n, tmp_path / f"{n[:-4]}.png", 0.35) for n in REAL]
    rows = list(scan([str(p) for p in paths], cascade=False))
    assert [r.verdict for r in rows] == [Verdict.REAL] * len(REAL), [r.score for r in rows]


@pytest.mark.skipif(not SHIPPED, reason="no shipped models in this checkout")
def test_white_tiles_score_the_neutral_value_and_photo_tiles_their_own(tmp_path: Path) -> None:
    src = CATALOG / "real-01.jpg"
    (row,) = scan([str(_on_canvas(src, tmp_path / "shot.png", 0.35))], cascade=False)
    (alone,) = scan([str(src)], cascade=False)
    tiles = np.array([float(np.ravel(m)[0]) for m in row.patch_maps])
    big = Image.open(tmp_path / "shot.png").convert("RGB")
    scale = max(big.size) / 512  # the view's max_side: boxes are in the resized image
    white = []
    for left, top, right, bottom in row.boxes:
        box = tuple(round(v * scale) for v in (left, top, right, bottom))
        white.append(bool((np.asarray(big.crop(box)) >= 250).all()))
    white_scores = tiles[np.array(white)]
    assert len(white_scores) >= 4
    # Every all-white tile gets the same, neutral score: below the threshold ...
    assert np.ptp(white_scores) < 0.02
    assert white_scores.max() < resolve("detector").threshold
    # ... and a logit of the gate's neutral value (0.34 when it was shipped) within 0.05.
    logit = math.log(white_scores.mean() / (1 - white_scores.mean()))
    assert abs(logit - 0.34) < 0.05
    # The photo itself stays a real photo on or off the canvas.
    assert alone.verdict is Verdict.REAL and row.verdict is Verdict.REAL
