"""The scan cascade: score a few of an image's tiles first, and stop when they already say "real".

The detector scores an image as the logit mean of its view tiles (16 tiles of 128 px for a
512-px view). In a catalog almost every image is a real photo whose tiles are all clearly real,
so most of that work decides nothing. The cascade scores the tiles in `tile_order` (spread over
the image, every prefix too) in stages: after `k` tiles, an image whose partial score (the same
`view.aggregate` over the tiles scored so far) is below the stage's threshold is finished — a
real photo, reported with that partial score and `stage` "screen". The others go on; an image
that passes every stage gets all its tiles scored, so its score is exactly the one without the
cascade.

The stage thresholds are calibrated by the trainer (`trainer/cascade.py`) so that >= 99.5 % of
the detector's detections at its shipped threshold pass every stage, on every zoo family's
validation images, and are stored in the manifest (`detector.cascade`) with what they were
calibrated on. The guarantee holds only for that detector, threshold and view, so `Scanner`
turns the cascade off (with a warning) when a scan changes one of them (`blockers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgcheck.view import ViewSpec, aggregate


def tile_order(n: int) -> list[int]:
    """0..n-1 in van der Corput order: every prefix is spread evenly over the tile list (row
    by row, so over the image), instead of starting in one corner."""
    order: list[int] = []
    seen: set[int] = set()
    i = 1
    while len(order) < n and i <= 4 * n + 8:
        x, den, k = 0.0, 1.0, i
        while k:
            den *= 2.0
            x += (k & 1) / den
            k >>= 1
        j = min(n - 1, int(x * n))
        if j not in seen:
            seen.add(j)
            order.append(j)
        i += 1
    return order + [j for j in range(n) if j not in seen]


def stops(scored: np.ndarray, n_tiles: int, tiles: int, threshold: float, how: str) -> bool:
    """The stage rule, one definition for scan and for calibration: an image of more than
    `tiles` tiles stops when `view.aggregate` over its first `tiles` (in `tile_order`; `scored`
    holds at least those) is below `threshold`."""
    return n_tiles > tiles and aggregate(scored[:tiles], how) < threshold


@dataclass(frozen=True)
class Cascade:
    """`stages`: (tiles scored so far, stop below this partial score), increasing in tiles."""

    stages: tuple[tuple[int, float], ...]
    detector_threshold: float
    view: dict[str, Any]

    @classmethod
    def from_manifest(cls, entry: Any) -> Cascade | None:
        """The manifest's `detector.cascade` object, or None when it is absent or malformed
        (a model from before the cascade; manifest.py reports a malformed one)."""
        if not isinstance(entry, dict):
            return None
        try:
            top = float(entry["detector_threshold"])
            # A stage never stops an image the detector would flag from the same tiles.
            stages = tuple(
                (int(s["tiles"]), min(float(s["threshold"]), top)) for s in entry["stages"]
            )
            return cls(stages, top, dict(entry["view"]))
        except (KeyError, TypeError, ValueError):
            return None

    def blockers(self, threshold: float, spec: ViewSpec, variant: str) -> list[str]:
        """Why this scan is outside the calibration (empty: the cascade may run)."""
        reasons = []
        if threshold < self.detector_threshold - 1e-12:
            reasons.append(
                f"--threshold {threshold:g} is below the {self.detector_threshold:.4f} the "
                "cascade was calibrated for"
            )
        if ViewSpec.from_dict(self.view) != spec:
            reasons.append("--view differs from the view the cascade was calibrated with")
        if variant != "fp32":
            reasons.append(f"the {variant} detector's scores are not the calibrated model's")
        return reasons


def problems(entry: Any) -> list[str]:
    """Schema problems of a manifest `detector.cascade` object (manifest.py's checks)."""
    if not isinstance(entry, dict):
        return ["detector.cascade must be an object"]
    stages = entry.get("stages")
    if not isinstance(stages, list) or not stages:
        return ["detector.cascade.stages must be a non-empty list"]
    out = []
    last = 0
    for s in stages:
        tiles = s.get("tiles") if isinstance(s, dict) else None
        thr = s.get("threshold") if isinstance(s, dict) else None
        if not (isinstance(tiles, int) and not isinstance(tiles, bool) and tiles > last):
            out.append("detector.cascade.stages need increasing integer tiles")
            break
        if not (isinstance(thr, int | float) and math.isfinite(thr) and 0 < thr < 1):
            out.append("detector.cascade.stages thresholds must be strictly between 0 and 1")
            break
        last = tiles
    dt = entry.get("detector_threshold")
    if not (isinstance(dt, int | float) and math.isfinite(dt) and 0 < dt < 1):
        out.append("detector.cascade.detector_threshold must be strictly between 0 and 1")
    if not isinstance(entry.get("view"), dict):
        out.append("detector.cascade.view must be an object")
    return out


__all__ = ["Cascade", "problems", "stops", "tile_order"]
