"""How the detector looks at an image: the one definition shared by scan and by calibration.

The detector is a fully convolutional PatchGAN trained on native-resolution crops, because the
tell-tale of a colorized photo is chroma that is smoother than its luminance; a plain downscale
of the whole image would wash that out. So the view is: bring the image to at most `max_side`
pixels on its long side (the scale of the training photos), then take `crop`x`crop` windows at
native resolution. The trainer calibrates its threshold through these same functions, so the
threshold and the runtime can never disagree about what "one image score" means.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]  # left, top, right, bottom in the resized image


@dataclass(frozen=True)
class ViewSpec:
    """mode: "tiles" (native crops covering the whole image), "grid" (grid x grid native crops,
    the 0.1 view: the four corners only), "center" (one crop), "resize" (whole image squashed).

    `aggregate`: how crop scores become the image score: "mean" of probabilities, or
    "logit_mean" (mean log-odds, so many confident tiles are not diluted by a few unsure ones).
    """

    mode: str = "tiles"
    max_side: int = 512
    crop: int = 128
    grid: int = 2
    aggregate: str = "logit_mean"

    @property
    def count(self) -> int:
        """Crops per image in the fixed-count modes. "tiles" has no fixed count (it depends on
        the image: `len(crop_boxes(w, h, spec))`), so asking is an error, not a wrong number."""
        if self.mode == "tiles":
            raise ValueError(
                "a tiles view has no fixed crop count; use len(crop_boxes(w, h, spec))"
            )
        return self.grid * self.grid if self.mode == "grid" else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewSpec:
        known = {k: data[k] for k in ("mode", "max_side", "crop", "grid") if k in data}
        # A 0.1 manifest has no "aggregate": its threshold was calibrated on the plain mean.
        known["aggregate"] = data.get("aggregate", "mean")
        spec = cls(**known)
        if spec.mode not in ("tiles", "grid", "center", "resize"):
            raise ValueError(f"unknown view mode {spec.mode!r}")
        if spec.aggregate not in ("mean", "logit_mean"):
            raise ValueError(f"unknown view aggregate {spec.aggregate!r}")
        return spec


def working_size(width: int, height: int, spec: ViewSpec) -> tuple[int, int]:
    """Size the image is resized to before cropping: long side <= max_side, each side >= crop."""
    if spec.mode == "resize":
        return spec.crop, spec.crop
    scale = min(1.0, spec.max_side / max(width, height))
    w = max(spec.crop, round(width * scale))
    h = max(spec.crop, round(height * scale))
    return w, h


def _positions(length: int, crop: int, n: int) -> list[int]:
    if n == 1 or length == crop:
        return [(length - crop) // 2] * n
    return [round(i * (length - crop) / (n - 1)) for i in range(n)]


def crop_boxes(width: int, height: int, spec: ViewSpec) -> list[Box]:
    """Crop windows, in the coordinates of the image resized to `working_size`."""
    w, h = working_size(width, height, spec)
    c = spec.crop
    if spec.mode in ("center", "resize"):
        left, top = (w - c) // 2, (h - c) // 2
        return [(left, top, left + c, top + c)]
    if spec.mode == "tiles":
        xs, ys = _positions(w, c, math.ceil(w / c)), _positions(h, c, math.ceil(h / c))
    else:
        xs, ys = _positions(w, c, spec.grid), _positions(h, c, spec.grid)
    return [(x, y, x + c, y + c) for y in ys for x in xs]


def draft_scale(width: int, height: int, spec: ViewSpec) -> float:
    """Largest reduction a decoder may apply (JPEG draft) without dropping below the view's scale."""
    w, h = working_size(width, height, spec)
    return min(w / width, h / height)


def make_views(
    image: Image.Image, spec: ViewSpec, source_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, list[Box]]:
    """RGB PIL image -> (K, crop, crop, 3) uint8 crops and their boxes in the resized image.

    `source_size` is the file's full-resolution size when `image` was decoded smaller (JPEG
    draft): the view geometry must come from it, as in calibration, since a draft decode can
    round a side by a pixel.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    size = working_size(*(source_size or image.size), spec)
    if size != image.size:
        image = image.resize(
            size, Image.Resampling.BOX if size[0] <= image.size[0] else Image.Resampling.BICUBIC
        )
    arr = np.asarray(image)
    boxes = (
        crop_boxes(*image.size, spec) if spec.mode != "resize" else [(0, 0, spec.crop, spec.crop)]
    )
    crops = np.stack([arr[t:b, le:r] for le, t, r, b in boxes])
    return np.ascontiguousarray(crops), boxes


def aggregate(crop_scores: np.ndarray, how: str = "mean") -> float:
    """Per-crop probabilities -> one image probability (documented in the README).

    "mean": their mean. "logit_mean": the sigmoid of their mean log-odds, i.e. the image is
    scored as one sample with the tiles' evidence pooled; probabilities are clipped to
    [1e-6, 1 - 1e-6] first so that one saturated tile cannot decide alone.
    """
    scores = np.asarray(crop_scores, dtype=np.float64)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        return math.nan
    if how == "logit_mean":
        p = np.clip(scores, 1e-6, 1 - 1e-6)
        return float(1.0 / (1.0 + math.exp(-float(np.mean(np.log(p) - np.log1p(-p))))))
    return float(scores.mean())
