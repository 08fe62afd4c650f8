"""Decoding any image file safely into an upright RGB picture, or a one-line reason why not.

Used by `scan` and `colorize` from worker threads (Pillow releases the GIL while decoding).
`decode` never raises for a bad file: zero-byte, truncated, not an image, decompression bomb,
unreadable, FIFO... all come back as a `DecodeFailure` with a message for the report row.

What a `Decoded` holds, and why:
- EXIF orientation is applied, and `width`/`height` are the upright size at full resolution,
  because that is what the user sees in any viewer.
- The image is RGB whatever the file's mode: CMYK and YCbCr are converted; 16-bit and float
  greys are scaled to 8 bits (a plain `convert` would clip them to white); transparency
  (RGBA, LA, palette with a transparent index) is composited over white, as a viewer shows it.
- Animated GIF/WebP/APNG: the first frame only (`frames` says how many there are).
- `grayscale` is true for grey modes (1, L, LA, I, F) and for colour-mode files whose channels
  are equal within `GREY_TOLERANCE` (a grey photo saved as RGB JPEG or as a grey palette).
  The detector says nothing about such images: they are "not applicable", never "real".
- `draft_scale` lets a JPEG decode at 1/2, 1/4 or 1/8 size in the DCT (much faster) when the
  caller will downscale anyway; it never goes below the scale the caller asks for. The returned
  image may therefore be smaller than `width` x `height`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgcheck import plugins
from imgcheck.files import open_regular

# Pillow's own hard limit (it raises above 2x MAX_IMAGE_PIXELS); covers 150-megapixel cameras.
DEFAULT_MAX_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)
GREY_TOLERANCE = 6  # max channel spread (0..255) still called grey, after light averaging
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_ORIENTATION_TAG = 0x0112

DraftScale = Callable[[int, int], float] | float | None


def _default_budget() -> int:
    """Bytes of pixels being decoded at once across all workers: 1 GiB, or a quarter of RAM."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        ram = 4 << 30
    return max(64 << 20, min(1 << 30, ram // 4))


class MemoryBudget:
    """Bounds decode memory, not just pixel counts: every decode reserves its estimated bytes
    (`decode_cost`) before loading and gives them back when it returns; a decode that does not
    fit waits for others to finish. One image larger than the whole budget still runs, alone,
    so nothing deadlocks. `peak` is the most bytes ever reserved at once (for tests)."""

    def __init__(self, limit: int | None = None) -> None:
        import threading

        self.limit = limit if limit is not None else _default_budget()
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int) -> None:
        with self._cond:
            while self.used > 0 and self.used + nbytes > self.limit:
                self._cond.wait()
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


def decode_cost(im: Image.Image) -> int:
    """Estimated peak bytes to load `im` at its (draft) size and convert it to RGB: the decoded
    frame in its own mode, plus the RGB copy, plus a rotated copy when EXIF asks for one."""
    w, h = im.size
    bands = len(im.getbands())
    depth = 4 if im.mode in ("I", "F") else 2 if "16" in im.mode else 1
    return w * h * (bands * depth + 6)


@dataclass
class Decoded:
    image: Image.Image  # RGB, upright; maybe reduced by draft_scale
    width: int  # upright size at full resolution
    height: int
    format: str | None
    grayscale: bool
    mode: str  # the file's own mode, e.g. "CMYK", "I;16", "P"
    frames: int = 1
    ok: bool = True


@dataclass
class DecodeFailure:
    error: str
    format: str | None = None
    width: int | None = None  # known when the header could be read
    height: int | None = None
    ok: bool = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _to_8bit_grey(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float greys -> L, scaled rather than clipped."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64))
        arr = arr * 255.0 if arr.max(initial=0.0) <= 1.0 else arr
    elif arr.max(initial=0) > 255:
        arr = arr.astype(np.float64) / 257.0  # 16-bit range
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB as a viewer shows it (see the module doc); a no-op for RGB."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return _to_8bit_grey(im).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


_to_rgb = to_rgb  # kept: colorize imported the private name first


def is_grey_rgb(image: Image.Image, tolerance: int = GREY_TOLERANCE) -> bool:
    """Channels equal within `tolerance` on a lightly averaged copy (JPEG chroma noise averages out).

    At most 0.1% of the averaged pixels may exceed the tolerance, so a stray coloured dust
    speck in a scanned grey photo does not make it "colour".
    """
    factor = max(1, max(image.size) // 256)
    small = image.reduce(factor) if factor > 1 else image
    arr = np.asarray(small)
    # max - min over the channels as elementwise ops on the three planes: the same numbers as
    # arr.max(axis=2) - arr.min(axis=2), ~3x faster (numpy reduces a length-3 axis slowly),
    # and exact in uint8 since max >= min.
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return float(np.count_nonzero(spread > tolerance)) <= 0.001 * spread.size


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # a broken EXIF block must not cost the image
        return 1


def _upright_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def decode(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    draft_scale: DraftScale = None,
    grey_tolerance: int = GREY_TOLERANCE,
    budget: MemoryBudget | None = None,
) -> Decoded | DecodeFailure:
    """Decode `path` (see the module doc). `draft_scale` is a factor <= 1, or a function of the
    upright full-resolution (width, height) returning one (e.g. `view.draft_scale` for a spec).
    `max_pixels=None` lifts our limit (Pillow's own bomb limit still applies). `budget`: a
    `MemoryBudget` shared by the decode workers; the load waits for its share of it."""
    path = os.fspath(path)
    plugins.register()  # HEIC/AVIF readers where installed (once; cheap afterwards)
    if "://" in path:  # s3://, gs://, file://: fetched through fsspec (imgcheck.sources)
        from imgcheck import sources

        if sources.is_url(path):
            local = sources.local_path(path)
            if local is None:
                return _decode_url(path, max_pixels, draft_scale, grey_tolerance, budget)
            path = local
    try:
        # Opened first, checked on the descriptor: a file swapped for a FIFO after the walk
        # saw it is refused instead of blocking the scan (imgcheck.files).
        fh = open_regular(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and os.path.islink(path):
            return DecodeFailure("broken symlink")
        return DecodeFailure(_os_message(exc))
    try:
        with fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return DecodeFailure("empty file (0 bytes)")
            return _decode_open(fh, max_pixels, draft_scale, grey_tolerance, budget)
    except OSError as exc:
        return DecodeFailure(_os_message(exc))


def _decode_url(
    url: str,
    max_pixels: int | None,
    draft_scale: DraftScale,
    grey_tolerance: int,
    budget: MemoryBudget | None,
) -> Decoded | DecodeFailure:
    """`decode` of an object in storage: its bytes in memory, then the same decoder."""
    import io

    from imgcheck import sources

    try:
        data = sources.fetch(url)
    except sources.SourceError as exc:
        return DecodeFailure(str(exc))
    except OSError as exc:
        return DecodeFailure(_os_message(exc))
    if not data:
        return DecodeFailure("empty file (0 bytes)")
    return _decode_open(io.BytesIO(data), max_pixels, draft_scale, grey_tolerance, budget)


def _os_message(exc: OSError) -> str:
    text = exc.strerror or _first_line(exc)
    return text[:1].lower() + text[1:]


def _decode_open(
    fh: object,
    max_pixels: int | None,
    draft_scale: DraftScale,
    grey_tolerance: int,
    budget: MemoryBudget | None = None,
) -> Decoded | DecodeFailure:
    fmt: str | None = None
    size: tuple[int, int] | None = None
    reserved = 0
    try:
        # Not `with Image.open(...)`: closing the image would free the pixels we return. The
        # caller's `with open(...)` closes the file; a loaded frame does not need it.
        im = Image.open(fh)  # type: ignore[arg-type]
        fmt = im.format
        size = _upright_size(im)
        if max_pixels is not None and size[0] * size[1] > max_pixels:
            return DecodeFailure(
                f"image too large: {size[0]}x{size[1]} pixels is over the limit of "
                f"{max_pixels} (decompression bomb protection; raise --max-pixels)",
                fmt,
                *size,
            )
        frames = int(getattr(im, "n_frames", 1) or 1)
        mode = im.mode
        scale = draft_scale(*size) if callable(draft_scale) else draft_scale
        if fmt in _JPEG_FORMATS and scale is not None and 0 < scale < 1:
            w, h = im.size
            im.draft(None, (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
        if budget is not None:  # after draft: a JPEG decoded at 1/8 costs 1/64 of its pixels
            reserved = decode_cost(im)
            budget.acquire(reserved)
        im.load()
        upright = ImageOps.exif_transpose(im) if _orientation(im) != 1 else im
        grey = mode in _GREY_MODES
        rgb = to_rgb(upright)
        if not grey:
            grey = is_grey_rgb(rgb, grey_tolerance)
        return Decoded(rgb, size[0], size[1], fmt, grey, mode, frames)
    except Image.DecompressionBombError as exc:
        return DecodeFailure(f"image too large (decompression bomb protection): {exc}", fmt)
    except UnidentifiedImageError:
        return DecodeFailure(_unidentified_message(fh), fmt)
    except MemoryError:
        return DecodeFailure("out of memory while decoding", fmt, *(size or (None, None)))
    except OSError as exc:
        message = _first_line(exc)
        # Pillow says "image file is truncated" while decoding, "Truncated File Read" when the
        # header itself is cut short: one message for both.
        if any(k in message.lower() for k in ("truncated", "broken data stream")):
            message = f"truncated or corrupt file: {message}"
        return DecodeFailure(message, fmt, *(size or (None, None)))
    except Exception as exc:  # Pillow raises many types on corrupt data; a row, never a traceback
        return DecodeFailure(
            f"cannot decode: {type(exc).__name__}: {_first_line(exc)}", fmt, *(size or (None, None))
        )
    finally:
        if reserved and budget is not None:
            budget.release(reserved)


def _unidentified_message(fh: object) -> str:
    """Name the extra to install for a HEIC/AVIF file no plugin read; else the generic text."""
    try:
        fh.seek(0)  # type: ignore[attr-defined]
        message = plugins.missing_message(fh.read(16))  # type: ignore[attr-defined]
    except Exception:
        message = None
    return message or "not an image, or a format Pillow cannot read"


def decode_file(path: Path, **kwargs: object) -> Decoded:
    """`decode` for callers that prefer an exception (e.g. colorize of one named file)."""
    result = decode(path, **kwargs)  # type: ignore[arg-type]
    if isinstance(result, DecodeFailure):
        raise DecodeError(f"{path}: {result.error}")
    return result


class DecodeError(ValueError):
    """Raised by `decode_file`; carries the same one-line message as `DecodeFailure.error`."""
