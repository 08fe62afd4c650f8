"""Colorizing grayscale photos with the shipped ONNX colorizer: the Python API and the batch runner.

All colour math (greying to CIELAB L, predicting chroma at the model's work size, re-attaching
it to the full-resolution L) is inside `colorizer.onnx`; this module only feeds it upright
8-bit sRGB pixels and writes what comes back. So a colour photo is greyed by the graph exactly
as in training, and the output always has the input's size and its sharpness.

- `colorize(image)`: one PIL image or numpy array in, the same kind out, same size. The ONNX
  session is created once per (model, device) and cached.
- `run_jobs(jobs, colorizer)`: the engine behind `imgcheck colorize`. Decoding and encoding run
  in a thread pool (Pillow releases the GIL), the model runs on batches of same-size images
  (bounded by a pixel budget, so a 40-megapixel scan runs alone), and at most a few images are
  in flight at any time, so memory does not grow with the number of inputs. Every input gives
  exactly one `ColorizeResult`; a bad file is an error result, never an exception.
- Lanes (`Colorizer(lanes=0)`, what the CLI opens): on CPU, `run_jobs` runs several model
  calls side by side, each on a share of the cores, instead of one call at a time on all of
  them. ONNX Runtime's intra-op threads meet at every op of the graph, and the colorizer's
  full-resolution colour math is a long chain of small elementwise ops: on 2 cores two
  single-threaded runs side by side colorize faster than one two-threaded run
  (benchmarks/RESULTS.md). Outputs are identical: each image is colorized on its own.

Colour management: when a decoded file embeds an RGB ICC profile and Pillow has ImageCms
(littlecms), its pixels are converted to sRGB first, since the model was trained on sRGB.
Without ImageCms, or for non-RGB profiles (a CMYK profile no longer fits after decoding),
the pixels pass through unchanged. Outputs are sRGB and carry no profile.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
from PIL import Image

from imgcheck.bounded import Pending, ordered_map, thread_pool
from imgcheck.decode import DEFAULT_MAX_PIXELS, Decoded, decode, to_rgb
from imgcheck.errors import first_line
from imgcheck.manifest import resolve_checked
from imgcheck.models import ModelInfo
from imgcheck.options import DEFAULT_BATCH_SIZE
from imgcheck.options import default_workers as _default_workers
from imgcheck.outputs import Target, save_image
from imgcheck.session import (
    Device,
    ModelError,
    active_provider,
    create_session,
    usable_cores,
    wants_cuda,
)

# Pixels the model sees in one session.run. The graph holds several float32 full-resolution
# planes per image, so ~4 MP per batch stays well under 1 GB; a bigger image runs alone.
DEFAULT_BATCH_PIXELS = 4_000_000
COMPARE_MAX_SIDE = 1024  # each panel of the compare view; a full-res triptych would be huge
# Most model calls `run_jobs` runs side by side (`Colorizer(lanes=0)`): each holds up to a
# batch's pixels in float32 planes, so peak memory grows with the lanes; past a few, a lane
# gets several intra-op threads instead (cores // lanes each).
MAX_LANES = 4

T = TypeVar("T")


class Colorizer:
    """An open colorizer model: checks the I/O contract once, then runs uint8 batches."""

    def __init__(
        self,
        model: Path | None = None,
        device: Device | str = Device.AUTO,
        threads: int | None = None,
        lanes: int = 1,
    ) -> None:
        """`threads`: ONNX Runtime intra-op threads per run (None: all cores, or the lane's
        share). `lanes`: model calls `run_jobs` runs side by side on CPU (0: one per core, at
        most `MAX_LANES`; 1: one call at a time). CUDA always runs one call at a time."""
        if lanes < 0:
            raise ValueError("lanes must be 0 (one per core) or more")
        self.info: ModelInfo = resolve_checked(
            "colorizer", Path(model) if model is not None else None
        )
        device = Device(device)
        cores = usable_cores()
        want = 1 if wants_cuda(device) else (min(MAX_LANES, cores) if lanes == 0 else lanes)
        if want > 1 and threads is None:
            threads = max(1, cores // want)
        self.session = create_session(self.info.path, device, threads)
        self.provider = active_provider(self.session)
        self.lanes = want  # > 1 only where no CUDA was asked for: the session is on CPU
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if "image" not in inputs or "colorized" not in outputs:
            raise ModelError(
                f"{self.info.path} does not follow the colorizer contract "
                f"(needs input 'image' and output 'colorized'; has {sorted(inputs)} -> "
                f"{sorted(outputs)})"
            )
        if inputs["image"].type != "tensor(uint8)":
            raise ModelError(f"{self.info.path}: input 'image' must be uint8")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB.

        Raises ModelError when the model breaks the contract (a wrong model, not a bad image);
        any other exception is about these inputs (e.g. out of memory) and is the caller's to
        turn into per-image errors.
        """
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
        (out,) = self.session.run(["colorized"], {"image": np.ascontiguousarray(batch)})
        if out.shape != batch.shape or out.dtype != np.uint8:
            raise ModelError(
                f"{self.info.path}: output 'colorized' is {out.dtype} {out.shape}, "
                f"expected uint8 {batch.shape} (not an imgcheck colorizer?)"
            )
        return out


@functools.lru_cache(maxsize=4)
def _cached(model: str | None, device: Device) -> Colorizer:
    return Colorizer(Path(model) if model else None, device)


def get_colorizer(model: Path | str | None = None, device: Device | str = "auto") -> Colorizer:
    """The cached `Colorizer` for (model, device): loading a model costs far more than a photo."""
    key = str(Path(model).resolve()) if model is not None else None
    return _cached(key, Device(device))


def _srgb(image: Image.Image) -> Image.Image:
    """Convert from an embedded RGB ICC profile to sRGB (see the module doc); else unchanged."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode != "RGB":
        return image
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without littlecms: pass through
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != "RGB":
            return image
        converted = ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode="RGB")
    except Exception:  # a broken profile must not cost the image: use the pixels as they are
        return image
    return converted if converted is not None else image


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        rgb = to_rgb(image)
        rgb.info = dict(image.info)  # keep the ICC profile for _srgb
        return np.asarray(_srgb(rgb), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"colorize() takes uint8 arrays, got {arr.dtype} (scale to 0..255 first)")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return np.ascontiguousarray(arr[..., :3])
    raise ValueError(f"colorize() takes (H, W), (H, W, 3) or (H, W, 4) arrays, got {arr.shape}")


@overload
def colorize(
    image: Image.Image, *, model: Path | str | None = ..., device: Device | str = ...
) -> Image.Image: ...
@overload
def colorize(
    image: np.ndarray, *, model: Path | str | None = ..., device: Device | str = ...
) -> np.ndarray: ...
def colorize(
    image: Image.Image | np.ndarray,
    *,
    model: Path | str | None = None,
    device: Device | str = "auto",
) -> Image.Image | np.ndarray:
    """Colorize one photo; colour input is greyed first (in the model), like the CLI.

    - PIL image (any mode: L, LA, P, RGB(A), I;16, CMYK, ...) -> PIL RGB image of the same size.
      It is used as given: apply `ImageOps.exif_transpose` first if it came from a rotated file.
    - numpy uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) RGB(A) -> (H, W, 3) uint8.
      Alpha is ignored.

    `model`: a model folder with manifest.json or a `.onnx` file (default: the shipped model);
    `device`: "auto", "cpu" or "cuda". Raises ModelError for a missing or broken model.
    """
    if not isinstance(image, (Image.Image, np.ndarray)):
        raise TypeError(
            f"colorize() takes a PIL image or a numpy array, not {type(image).__name__}"
        )
    rgb = _as_rgb_array(image)
    out = get_colorizer(model, device).run(rgb[None])[0]
    return Image.fromarray(out, "RGB") if isinstance(image, Image.Image) else out


# ---------------------------------------------------------------------------------------------
# Batch runner (the CLI's engine)


class Outcome(str, Enum):
    WRITTEN = "written"
    SKIPPED = "skipped"  # every output already existed (a previous run did it): no --overwrite
    ERROR = "error"


@dataclass
class Job:
    """One input: where to read it, how to name it in messages, and where its outputs go."""

    path: str
    display: str
    target: Target | None = None
    error: str | None = None  # already failed before decoding (missing, unsafe output name)


@dataclass
class ColorizeResult:
    path: str  # display form of the input path
    outcome: Outcome
    output: str | None = None
    width: int | None = None
    height: int | None = None
    grayscale: bool | None = None  # the input was already grey (else the model greyed it)
    error: str | None = None

    @property
    def megapixels(self) -> float:
        return (self.width or 0) * (self.height or 0) / 1e6


@dataclass
class _Loaded:
    job: Job
    rgb: np.ndarray  # (H, W, 3) uint8 upright sRGB
    grayscale: bool


COMPARE_LABELS = ("original", "grayscale", "colorized")


def label_height(panel_height: int) -> int:
    """Height of the compare view's label strip: legible at any panel size."""
    return max(14, panel_height // 24)


def compare_view(original: np.ndarray, colorized: np.ndarray, gap: int = 8) -> Image.Image:
    """original | grayscale | colorized, side by side under a strip naming each column, each
    panel at most COMPARE_MAX_SIDE.

    The grey panel is Pillow's luma of the original: a display aid, close to (not exactly) the
    CIELAB L the model sees.
    """
    from PIL import ImageDraw, ImageFont

    h, w = original.shape[:2]
    scale = min(1.0, COMPARE_MAX_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    panels = []
    for arr in (original, colorized):
        im = Image.fromarray(arr, "RGB")
        panels.append(im.resize(size, Image.Resampling.LANCZOS) if scale < 1 else im)
    panels.insert(1, panels[0].convert("L").convert("RGB"))
    top = label_height(size[1])
    canvas = Image.new("RGB", (3 * size[0] + 2 * gap, top + size[1]), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, top - 4))
    for i, (panel, label) in enumerate(zip(panels, COMPARE_LABELS, strict=True)):
        left = i * (size[0] + gap)
        canvas.paste(panel, (left, top))
        draw.text((left + 2, 1), label, fill=(0, 0, 0), font=font)
    return canvas


class Batcher:
    """Groups same-size images into batches under a pixel budget; big images go alone.

    Pending images are bounded by the same budget: when the groups waiting for company hold
    more than `max_pixels`, the fullest group is released as it is.
    """

    def __init__(self, batch_size: int, max_pixels: int) -> None:
        self.batch_size = max(1, batch_size)
        self.max_pixels = max(1, max_pixels)
        self.groups: dict[tuple[int, int], list[Any]] = {}
        self.pending = 0

    def add(self, item: T, shape: tuple[int, int]) -> list[list[T]]:
        pixels = shape[0] * shape[1]
        if self.batch_size == 1 or 2 * pixels > self.max_pixels:
            return [[item]]
        group = self.groups.setdefault(shape, [])
        group.append(item)
        self.pending += pixels
        ready = []
        if len(group) >= self.batch_size or (len(group) + 1) * pixels > self.max_pixels:
            ready.append(self._pop(shape))
        while self.pending > self.max_pixels and self.groups:
            ready.append(
                self._pop(max(self.groups, key=lambda s: s[0] * s[1] * len(self.groups[s])))
            )
        return ready

    def _pop(self, shape: tuple[int, int]) -> list[Any]:
        group = self.groups.pop(shape)
        self.pending -= shape[0] * shape[1] * len(group)
        return group

    def flush(self) -> list[list[Any]]:
        return [self._pop(shape) for shape in list(self.groups)]


def _prepare(job: Job, max_pixels: int | None) -> _Loaded | ColorizeResult:
    """One job in a worker thread: its result when there is nothing to do, else its pixels."""
    if job.error is not None or job.target is None:
        return ColorizeResult(job.display, Outcome.ERROR, error=job.error or "no output")
    if job.target.done:
        return ColorizeResult(job.display, Outcome.SKIPPED, str(job.target.output))
    return _load(job, max_pixels)


def _load(job: Job, max_pixels: int | None) -> _Loaded | ColorizeResult:
    """Decode one input as colorize does (upright sRGB pixels), or its error result."""
    decoded = decode(job.path, max_pixels=max_pixels)
    if not isinstance(decoded, Decoded):
        return ColorizeResult(
            job.display,
            Outcome.ERROR,
            width=decoded.width,
            height=decoded.height,
            error=decoded.error,
        )
    try:
        rgb = np.asarray(_srgb(decoded.image), dtype=np.uint8)
    except MemoryError:
        return ColorizeResult(job.display, Outcome.ERROR, error="out of memory")
    return _Loaded(job, rgb, decoded.grayscale)


def _finish(item: _Loaded, out: np.ndarray, quality: int) -> ColorizeResult:
    """Encode and atomically write the outputs of one image (runs in a worker thread)."""
    target = item.job.target
    assert target is not None
    h, w = item.rgb.shape[:2]
    result = ColorizeResult(
        item.job.display, Outcome.WRITTEN, str(target.output), w, h, item.grayscale
    )
    path = target.output
    try:
        if target.write_output:
            save_image(Image.fromarray(out, "RGB"), path, target.pil_format, quality, target.root)
        if target.write_compare and target.compare is not None:
            path = target.compare
            save_image(compare_view(item.rgb, out), path, target.pil_format, quality, target.root)
    except Exception as exc:  # disk full, permission denied, encoder error: a row, not a crash
        result.outcome = Outcome.ERROR
        result.error = f"cannot write {path}: {_one_line(exc)}"
    return result


def _one_line(exc: BaseException) -> str:
    """An OSError's reason in lower case (`permission denied`), else the first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return first_line(exc)


def _infer(colorizer: Colorizer, batch: list[_Loaded]) -> list[tuple[_Loaded, np.ndarray | str]]:
    """Run one batch; if it fails, retry image by image so one bad image cannot sink the rest."""
    try:
        out = colorizer.run(np.stack([item.rgb for item in batch]))
        return list(zip(batch, out, strict=True))
    except ModelError:
        raise
    except Exception as exc:
        if len(batch) > 1:
            return [pair for item in batch for pair in _infer(colorizer, [item])]
        return [(batch[0], f"colorizer failed: {_one_line(exc)}")]


def split_batch(batch: list[T], parts: int) -> list[list[T]]:
    """`batch` in at most `parts` contiguous runs of near-equal length (none empty), so a
    batch of same-size images keeps every lane busy."""
    k = max(1, min(parts, len(batch)))
    size, extra = divmod(len(batch), k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (i < extra)
        out.append(batch[start:end])
        start = end
    return out


def run_jobs(
    jobs: Iterable[Job],
    colorizer: Colorizer,
    *,
    workers: int = 2,
    quality: int = 92,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_pixels: int = DEFAULT_BATCH_PIXELS,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[ColorizeResult]:
    """Colorize `jobs` and yield one result per job (not in input order: batches regroup).

    In flight at once: at most `2 * workers` decodes, the images waiting in the batcher
    (`batch_pixels`), `colorizer.lanes` model runs (a batch is split over the lanes) and about
    `2 * workers + batch_size` encodes. Closing the generator (or Ctrl-C) cancels queued work
    and waits for running writes, which are atomic anyway. The threads are
    `imgcheck.bounded`'s, the pipeline scan uses too.
    """
    limit = max(2, 2 * workers)
    lanes = max(1, getattr(colorizer, "lanes", 1))  # any object with `run` will do
    batcher = Batcher(batch_size, batch_pixels)
    encodes: Pending[ColorizeResult] = Pending()
    runs: Pending[list[tuple[_Loaded, np.ndarray | str]]] = Pending()
    load = functools.partial(_prepare, max_pixels=max_pixels)

    with (
        thread_pool(workers, "imgcheck-io") as pool,
        thread_pool(lanes, "imgcheck-colorize") as lane_pool,
    ):

        def settle(keep: int) -> Iterator[ColorizeResult]:
            """Hand finished model runs to the encoders, waiting while more than `keep` run."""
            for pairs in runs.take(keep):
                for item, out in pairs:
                    if isinstance(out, str):
                        h, w = item.rgb.shape[:2]
                        yield ColorizeResult(
                            item.job.display, Outcome.ERROR, None, w, h, item.grayscale, out
                        )
                    else:
                        encodes.put(pool.submit(_finish, item, out, quality))

        def run_batches(batches: list[list[_Loaded]]) -> Iterator[ColorizeResult]:
            for batch in batches:
                for part in split_batch(batch, lanes):
                    runs.put(lane_pool.submit(_infer, colorizer, part))
                    # A free lane for the next run; with one lane, each run before the next.
                    yield from settle(lanes - 1)
                yield from encodes.take(limit)

        for loaded in ordered_map(pool, load, jobs, limit):
            if isinstance(loaded, ColorizeResult):  # failed, skipped or not decodable
                yield loaded
            else:
                yield from run_batches(batcher.add(loaded, loaded.rgb.shape[:2]))
            yield from settle(lanes)  # runs already finished only: nothing waits here
            yield from encodes.take(limit)
        yield from run_batches(batcher.flush())
        yield from settle(0)
        yield from encodes.take(0)


# Colorize's thread default lives with scan's in imgcheck.options; the name stays for callers.
default_workers = functools.partial(_default_workers, "colorize")
