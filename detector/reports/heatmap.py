"""Thumbnails and patch-map heatmaps for the HTML report (numpy + PIL only).

The detector scores native-resolution crops of the *view* (the image resized by
`view.working_size`), and each crop yields a coarse patch map of probabilities. To show a
person *where* an image looks colorized, every map is stretched over its crop box, the crops are
averaged where they overlap, and areas no crop saw stay transparent. The view is a resize of the
whole image (possibly non-uniform for extreme aspect ratios), so scaling the crop boxes from view
to thumbnail size lines the layer up with the picture again; the layer is drawn at that small
size directly (about 1 ms per flagged image instead of ~70 ms at view size).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

# A perceptual, colour-blind-safe ramp (anchors of matplotlib's "inferno"), low -> high.
_RAMP = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


def make_thumbnail(image: Image.Image, max_side: int = 160, quality: int = 75) -> bytes:
    """JPEG bytes of `image` fitted into `max_side` x `max_side` (aspect ratio kept).

    Any mode is first brought to RGB by `decode.to_rgb` (transparency over white, 16-bit/float
    scaled to 8 bits), the same conversion the detector's input went through. A few KB per image keeps the HTML report openable.
    """
    from imgcheck.decode import to_rgb

    w, h = image.size
    scale = min(1.0, max_side / max(w, h, 1))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = to_rgb(image).resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def heat_values(
    patch_maps: Sequence[Any],
    boxes: Sequence[tuple[int, int, int, int]],
    view_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per pixel and the mask of pixels any crop covered, shape (h, w).

    Rendered directly at `out_size` (default: the view size) with the boxes scaled to it: a
    thumbnail-sized layer costs a fraction of a millisecond, a 1024-pixel one tens of them.
    """
    vw, vh = view_size
    ow, oh = out_size or view_size
    sx, sy = ow / vw, oh / vh
    total = np.zeros((oh, ow), dtype=np.float32)
    count = np.zeros((oh, ow), dtype=np.float32)
    for pmap, box in zip(patch_maps, boxes, strict=False):
        arr = np.nan_to_num(np.asarray(pmap, dtype=np.float32), nan=0.0)
        arr = np.clip(np.squeeze(arr), 0.0, 1.0)
        left, top = max(0, round(box[0] * sx)), max(0, round(box[1] * sy))
        right, bottom = min(ow, round(box[2] * sx)), min(oh, round(box[3] * sy))
        if arr.ndim != 2 or arr.size == 0 or right <= left or bottom <= top:
            continue
        # Bilinear resampling of the coarse map onto its box (a float "F" image keeps values).
        up = Image.fromarray(arr, "F").resize(
            (right - left, bottom - top), Image.Resampling.BILINEAR
        )
        total[top:bottom, left:right] += np.asarray(up, dtype=np.float32)
        count[top:bottom, left:right] += 1.0
    covered = count > 0
    mean = np.divide(total, count, out=np.zeros_like(total), where=covered)
    return np.clip(mean, 0.0, 1.0), covered


def stretch(values: np.ndarray, covered: np.ndarray, min_range: float = 0.02) -> np.ndarray:
    """Values scaled to the image's own range of tile scores, so the layer shows *where*.

    Tile probabilities of a flagged image often all sit near 1 (or of a real one near 0): on
    the absolute scale the layer is a uniform wash. Stretching min..max of this image to 0..1
    shows which regions drive the score; the image's score is printed next to it. A range
    below `min_range` is left as it is: there is no "where" to show.
    """
    if not covered.any():
        return values
    lo, hi = float(values[covered].min()), float(values[covered].max())
    if hi - lo < min_range:
        return values
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def colourize(values: np.ndarray, covered: np.ndarray) -> Image.Image:
    """RGBA heat layer: ramp colour by value, more opaque where more colorized, clear elsewhere."""
    pos = values * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(np.int64).clip(0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    rgb = _RAMP[lo] * (1.0 - frac) + _RAMP[lo + 1] * frac
    alpha = np.where(covered, 60.0 + 170.0 * values, 0.0)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return Image.fromarray(np.clip(rgba + 0.5, 0, 255).astype(np.uint8), "RGBA")


def heatmap_png(
    patch_maps: Sequence[Any],
    boxes: Sequence[tuple[int, int, int, int]],
    view_size: tuple[int, int] | None,
    size: tuple[int, int] | None = None,
) -> bytes | None:
    """PNG bytes of the semi-transparent heat layer at `size` (the thumbnail's; default: the
    view fitted into 160 pixels).

    Returns None when there is nothing to draw (no maps, no boxes, no view size).
    """
    if not patch_maps or not boxes or not view_size or min(view_size) <= 0:
        return None
    if size is None:
        scale = min(1.0, 160 / max(view_size))
        size = (max(1, round(view_size[0] * scale)), max(1, round(view_size[1] * scale)))
    values, covered = heat_values(patch_maps, boxes, view_size, size)
    if not covered.any():
        return None
    layer = colourize(stretch(values, covered), covered)
    out = io.BytesIO()
    layer.save(out, "PNG")  # optimize=True: 2x the time for <1% smaller
    return out.getvalue()
