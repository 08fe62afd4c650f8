"""The scan pipeline: paths -> parallel decode and views -> batched detector -> ordered results.

Streaming by construction, so memory stays flat whatever the folder size:
- paths come lazily from `sources.iter_sources` (`inputs.iter_inputs` for local paths, fsspec
  listings for URLs; never a full file list);
- at most `window` images are in flight (decoded or being decoded): `bounded.ordered_map`
  submits a new decode only when the main thread takes a finished one (the pipeline shared
  with colorize);
- results leave in input order as soon as their batch ran, so reports are deterministic and
  are written while the scan goes on.

Decoding and cropping run in threads (Pillow releases the GIL while decoding and resizing;
JPEGs decode at a DCT draft scale when the view downsizes anyway); inference is driven from the
main thread (ONNX Runtime releases the GIL too), one model call per batch of `batch_size`
images, which on CPU is split into one single-threaded session run per core, side by side
(`Scanner.lanes`).
Per-file problems become rows (status error), never exceptions; model problems raise
`ModelError` from the constructor, before the first image.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from imgcheck import view as view_mod
from imgcheck.bounded import ordered_map, thread_pool
from imgcheck.cascade import Cascade, stops, tile_order
from imgcheck.decode import DEFAULT_MAX_PIXELS, Decoded, MemoryBudget, decode
from imgcheck.errors import first_line
from imgcheck.inputs import InputItem
from imgcheck.manifest import resolve_checked
from imgcheck.models import ModelInfo
from imgcheck.options import DEFAULT_BATCH_SIZE, ScanOptions, default_workers
from imgcheck.results import ScanResult, Stage, Status, Verdict
from imgcheck.session import (
    Device,
    ModelError,
    active_provider,
    create_session,
    usable_cores,
    wants_cuda,
)
from imgcheck.sources import iter_sources
from imgcheck.view import ViewSpec

DEFAULT_THRESHOLD = 0.5  # only for a model that ships without a calibrated one
MAX_LANES = 16
# Crops per single-threaded session run on CPU. The forensic graph streams a dozen full-size
# maps per crop through hundreds of elementwise ops, so a run whose maps stay in cache is
# faster per crop: 2.38 ms at 8 crops, 2.78 at 24, 3.08 at 48 (and 3.08 at 1, where the
# per-run overhead dominates) on this project's 2-core VM, one thread (benchmarks/RESULTS.md).
RUN_TILES = 8


def default_lanes() -> int:
    """Side-by-side single-threaded session runs per model call on CPU: one per usable core."""
    return max(1, min(MAX_LANES, usable_cores()))


def parse_view(text: str, base: ViewSpec | None = None) -> ViewSpec:
    """`--view`: a JSON object, or `key=value` pairs overriding `base` (`grid=3,crop=192`)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--view is not valid JSON: {exc}") from exc
    else:
        data = dict((base or ViewSpec()).to_dict())
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in data:
                raise ValueError(f"--view expects key=value with keys {', '.join(data)}: {part!r}")
            key = key.strip()
            data[key] = value.strip() if key == "mode" else int(value)
    if not isinstance(data, dict):
        raise ValueError("--view must be a JSON object or key=value pairs")
    return _checked_view(data)


def _checked_view(data: dict[str, Any]) -> ViewSpec:
    spec = ViewSpec.from_dict(data)
    if spec.crop < 32 or spec.grid < 1 or spec.max_side < spec.crop:
        raise ValueError(f"invalid view {spec}: needs crop >= 32, grid >= 1, max_side >= crop")
    return spec


@dataclass
class _Prepared:
    """What a worker thread hands back for one input: a finished row, or crops to score."""

    result: ScanResult
    crops: np.ndarray | None = None  # (K, crop, crop, 3) uint8 when the detector must run
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


def prepare(
    item: InputItem,
    spec: ViewSpec,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    budget: MemoryBudget | None = None,
    thumbnails: bool = False,
    min_side: int | None = None,
) -> _Prepared:
    """Decode one input and cut its views under `spec`; any failure becomes an error row.

    What `Scanner.prepare` runs in its decode threads, and what the Ray engine's CPU stage runs
    without a model loaded (imgcheck.engine_ray): one definition, so both engines give the
    same rows."""
    if item.error is not None:
        return _Prepared(ScanResult(item.path, Status.ERROR, error=item.error))
    try:
        decoded = decode(
            item.path,
            max_pixels=max_pixels,
            draft_scale=lambda w, h: view_mod.draft_scale(w, h, spec),
            budget=budget,
        )
        if not isinstance(decoded, Decoded):
            return _Prepared(
                ScanResult(
                    item.path,
                    Status.ERROR,
                    width=decoded.width,
                    height=decoded.height,
                    format=decoded.format,
                    error=decoded.error,
                )
            )
        result = ScanResult(
            item.path,
            Status.GRAYSCALE if decoded.grayscale else Status.OK,
            width=decoded.width,
            height=decoded.height,
            format=decoded.format,
        )
        if thumbnails:
            from imgcheck.reports import make_thumbnail

            result.thumbnail = make_thumbnail(decoded.image)
        if decoded.grayscale:
            return _Prepared(result)
        least = spec.crop if min_side is None else min_side
        if min(decoded.width, decoded.height) < least:
            result.status = Status.TOO_SMALL
            result.error = (
                f"too small to judge: {decoded.width}x{decoded.height} px, the detector needs "
                f"{least} px on each side (--min-side)"
            )
            return _Prepared(result)
        source = (decoded.width, decoded.height)
        crops, boxes = view_mod.make_views(decoded.image, spec, source_size=source)
        target = view_mod.working_size(*source, spec)
        result.view_size = target
        return _Prepared(result, crops, boxes)
    except Exception as exc:  # a bug for one odd file must not end a million-file scan
        message = f"internal error: {type(exc).__name__}: {first_line(exc)}"
        return _Prepared(ScanResult(item.path, Status.ERROR, error=message))


class Scanner:
    """A loaded detector plus scan settings; `run(items)` streams one ScanResult per input.

    Construct it first (it raises `ModelError` for a missing, corrupt or wrong model, and for
    `device=cuda` where CUDA is not really active), then read `provider`, `threshold`,
    `spec` and `warnings` for the report header, then iterate `run`.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: Device | str = Device.AUTO,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        threshold: float | None = None,
        view: ViewSpec | dict[str, Any] | str | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        thumbnails: bool = False,
        variant: str | None = None,
        threads: int | None = None,
        cascade: bool = True,
        min_side: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.workers = workers if workers and workers > 0 else default_workers("scan")
        self.max_pixels = max_pixels
        # Images with a side below this are reported too_small, not scored (None: the view's
        # tile). Real photos shrunk to thumbnails score high once upscaled into a tile: of the
        # 153 validation photos as JPEG thumbnails, 37 % with a short side of 32-63 px and
        # 4.4 % at 96-127 px were flagged, 0 of 25 at >= 160 (MODEL_CARD.md, "Thumbnails").
        self.min_side = min_side
        self.thumbnails = thumbnails
        self.warnings: list[str] = []
        Image.init()  # register every Pillow plugin once, before threads race to do it
        device = Device(device)
        self.info: ModelInfo = resolve_checked("detector", Path(model) if model else None, variant)
        self.variant = self.info.variant  # "fp32" (calibrated), "int8" or "fp16"
        # threads: ONNX Runtime's intra-op threads; a Ray actor that holds one CPU of a shared
        # node asks for 1 (imgcheck.engine_ray). None (the default): on CPU, sessions run one
        # thread each and every model call is split over `lanes` runs side by side, one per
        # core. ORT's intra-op threads scale poorly on the forensic graph's hundreds of small
        # ops (they meet at every op): on 2 cores two 1-thread runs scored 1.42-1.46x the
        # tiles/s of one 2-thread run, same scores (benchmarks/RESULTS.md).
        intra = 1 if threads is None and not wants_cuda(device) else threads
        self.session = create_session(self.info.path, device, intra)
        self.provider = active_provider(self.session)
        on_cpu_alone = self.provider == "cpu" and intra == 1
        self.lanes = default_lanes() if on_cpu_alone and threads is None else 1
        # Runs of at most RUN_TILES crops where a run is one CPU thread (lanes, or threads=1);
        # a run on several threads (threads >= 2, or a CUDA session that fell back to CPU)
        # takes a call whole, as CUDA does. A CUDA machine gets one session, opened once.
        self._run_tiles = RUN_TILES if on_cpu_alone else None
        self._lane_pool = (
            ThreadPoolExecutor(self.lanes - 1, thread_name_prefix="imgcheck-score")
            if self.lanes > 1
            else None
        )
        self._check_device(device)
        self._check_signature()
        try:
            base = _checked_view(self.info.view) if self.info.view else ViewSpec()
            if isinstance(view, str):
                self.spec = parse_view(view, base)
            elif isinstance(view, dict):
                self.spec = _checked_view(view)
            else:
                self.spec = view or base
        except (TypeError, ValueError) as exc:
            raise ModelError(f"bad detector view: {exc}") from exc
        if threshold is not None:
            self.threshold = float(threshold)
        elif self.info.threshold is not None:
            self.threshold = float(self.info.threshold)
        else:
            self.threshold = DEFAULT_THRESHOLD
            self.warnings.append(
                f"the model has no calibrated threshold; using {DEFAULT_THRESHOLD}"
            )
        self.cascade = self._cascade() if cascade else None
        # Decode memory across the workers, not only pixels per image (a 38-byte WebP can
        # decode to 13000x13000): big images wait for each other instead of stacking up.
        self.budget = MemoryBudget()
        # Enough work in flight to keep every worker busy while a batch is being scored.
        self.window = max(2 * self.workers, self.batch_size + self.workers)

    @classmethod
    def from_options(cls, options: ScanOptions, **overrides: Any) -> Scanner:
        """The scanner `options` ask for (`imgcheck scan` builds them once from its flags);
        `overrides` replace single constructor arguments (the CLI's resolved pixel limit)."""
        kwargs: dict[str, Any] = {
            "batch_size": options.batch_size,
            "workers": options.workers or None,
            "threshold": options.threshold,
            "view": options.view,
            "variant": options.variant,
            "cascade": options.cascade,
            "min_side": options.min_side or None,
        }
        if options.max_pixels:
            kwargs["max_pixels"] = options.max_pixels
        kwargs.update(overrides)
        return cls(options.model, options.device, **kwargs)

    def _cascade(self) -> Cascade | None:
        """The manifest's cascade when its calibration covers this scan (see imgcheck.cascade)."""
        found = Cascade.from_manifest(self.info.meta.get("cascade"))
        if found is None:
            return None
        blockers = found.blockers(self.threshold, self.spec, self.variant)
        if blockers:
            self.warnings.append(f"cascade off: {'; '.join(blockers)}")
            return None
        return found

    @property
    def model_name(self) -> str:
        return str(self.info.path)

    def _check_device(self, device: Device) -> None:
        from imgcheck.session import available_providers

        cuda_available = "CUDAExecutionProvider" in available_providers()
        if self.provider == "cuda":
            return
        if device is Device.CUDA:
            raise ModelError(
                "--device cuda was asked for, but ONNX Runtime could not start CUDA and fell "
                "back to CPU (check the CUDA/cuDNN libraries onnxruntime-gpu needs), or use "
                "--device cpu"
            )
        if device is Device.AUTO and cuda_available:
            self.warnings.append("CUDA is installed but could not be started: running on CPU")

    def _check_signature(self) -> None:
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if (
            len(inputs) != 1
            or inputs[0].type != "tensor(uint8)"
            or len(inputs[0].shape) != 4
            or "score" not in outputs
        ):
            got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise ModelError(
                f"{self.info.path} is not an imgcheck detector: expected one input uint8 "
                f"[N, H, W, 3] and an output 'score', got inputs {got} and outputs "
                f"{', '.join(outputs)}"
            )
        self._input = inputs[0].name
        self._outputs = ["score"] + (["patch_map"] if "patch_map" in outputs else [])

    # -- worker thread -------------------------------------------------------------------

    def prepare(self, item: InputItem) -> _Prepared:
        """Decode one input and cut its views; any failure becomes an error row."""
        return prepare(
            item,
            self.spec,
            max_pixels=self.max_pixels,
            budget=self.budget,
            thumbnails=self.thumbnails,
            min_side=self.min_side,
        )

    # -- main thread ---------------------------------------------------------------------

    def _run_model(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One model call: per-crop scores and patch maps (None if the model has none).

        On CPU the crops go in single-threaded runs of at most `RUN_TILES`, dealt round-robin
        to the `lanes`, this thread taking lane 0. Every crop is scored on its own by the graph, so
        neither the split nor the run size changes a score."""
        n_runs = max(min(self.lanes, len(crops)), 1)
        if self._run_tiles:
            n_runs = max(n_runs, math.ceil(len(crops) / self._run_tiles))
        runs = np.array_split(crops, n_runs)
        lanes = [runs[j :: self.lanes] for j in range(min(self.lanes, n_runs))]
        pool = self._lane_pool
        try:
            others = [pool.submit(self._run_lane, lane) for lane in lanes[1:]] if pool else []
            done = [self._run_lane(lanes[0])] + [f.result() for f in others]
        except Exception as exc:
            raise ModelError(
                f"the detector failed on a batch of {len(crops)} crops: {first_line(exc)}"
            ) from exc
        # Back to crop order: run i is the (i // lanes)-th run of lane i % lanes.
        outs_list = [done[i % self.lanes][i // self.lanes] for i in range(n_runs)]
        outs = [np.concatenate([o[k] for o in outs_list]) for k in range(len(outs_list[0]))]
        scores = np.asarray(outs[0], dtype=np.float32).reshape(-1)
        maps = np.asarray(outs[1], dtype=np.float32) if len(outs) > 1 else None
        if scores.shape[0] != crops.shape[0]:
            raise ModelError(
                f"the detector returned {scores.shape[0]} scores for {crops.shape[0]} crops"
            )
        return scores, maps

    def _run_lane(self, runs: list[np.ndarray]) -> list[list[np.ndarray]]:
        return [self._run_part(r) for r in runs]

    def _run_part(self, crops: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self._outputs, {self._input: crops})

    def score(self, batch: list[_Prepared]) -> None:
        """Score a batch of prepared inputs in place (score, verdict, stage, patch maps; a
        non-finite score makes an error row). The one batch-scoring entry point: `run` calls
        it, and so do the Ray engine's actors, so the cascade is the same in both engines.

        With the cascade (imgcheck.cascade), each image's tiles are scored in `tile_order`,
        stage by stage, every stage one session call for the whole batch; an image whose
        partial score falls below a stage's threshold stops there (stage "screen")."""
        todo = [p for p in batch if p.crops is not None]
        if not todo:
            return
        order = {id(p): tile_order(len(p.crops)) for p in todo}  # type: ignore[arg-type]
        got: dict[int, list[tuple[int, float, np.ndarray | None]]] = {id(p): [] for p in todo}
        stages = list(self.cascade.stages) if self.cascade is not None else []
        for limit, stop in [*stages, (None, None)]:
            chunks, owners = [], []
            for p in todo:
                idx = order[id(p)][len(got[id(p)]) : limit]
                if idx:
                    chunks.append(p.crops[idx])  # type: ignore[index]
                    owners.append((p, idx))
            if chunks:
                scores, maps = self._run_model(np.concatenate(chunks))
                start = 0
                for p, idx in owners:
                    for j, tile in enumerate(idx):
                        m = maps[start + j].copy() if maps is not None else None
                        got[id(p)].append((tile, float(scores[start + j]), m))
                    start += len(idx)
            if limit is None:
                break
            still = []
            for p in todo:
                scored = np.array([s for _, s, _ in got[id(p)]])
                if stops(scored, len(order[id(p)]), limit, stop, self.spec.aggregate):
                    self._finish(p, got[id(p)], Stage.SCREEN)
                else:
                    still.append(p)
            todo = still
        for p in todo:
            self._finish(p, got[id(p)], Stage.DETECTOR)

    def _finish(
        self,
        prep: _Prepared,
        tiles: list[tuple[int, float, np.ndarray | None]],
        stage: Stage,
    ) -> None:
        """Aggregate the scored tiles (in view order) into the row; free the pixels."""
        tiles = sorted(tiles, key=lambda t: t[0])
        result = prep.result
        score = view_mod.aggregate(np.array([s for _, s, _ in tiles]), self.spec.aggregate)
        if math.isnan(score):
            result.status = Status.ERROR
            result.error = "the detector returned a non-finite score"
        else:
            result.score = score
            # A stopped image scored below a stage threshold, never above the detector's.
            result.verdict = Verdict.COLORIZED if score >= self.threshold else Verdict.REAL
            result.stage = stage
            result.boxes = [prep.boxes[i] for i, _, _ in tiles]
            if all(m is not None for _, _, m in tiles):
                result.patch_maps = [m for _, _, m in tiles]
        prep.crops = None  # free the pixels as soon as they are scored

    def run(self, items: Iterable[InputItem]) -> Iterator[ScanResult]:
        """Stream results in input order (see the module doc for the memory bound)."""
        ready: deque[_Prepared] = deque()  # taken from workers, in order, awaiting the batch
        waiting = 0  # how many in `ready` still need the detector
        with thread_pool(self.workers, "imgcheck-decode") as pool:
            for prep in ordered_map(pool, self.prepare, items, self.window):
                ready.append(prep)
                waiting += prep.crops is not None
                # Score when the batch is full, or when rows that need no detector pile up
                # behind a partial batch (keeps `ready` bounded).
                if waiting and (waiting >= self.batch_size or len(ready) >= self.window):
                    self.score(list(ready))
                    waiting = 0
                while ready and (ready[0].crops is None):
                    yield ready.popleft().result
            if waiting:  # nothing else will come: the last, partial batch
                self.score(list(ready))
            while ready:
                yield ready.popleft().result


def scan(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    device: Device | str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    threshold: float | None = None,
    recursive: bool = True,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    thumbnails: bool = False,
    view: ViewSpec | dict[str, Any] | str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    stdin: IO[Any] | None = None,
    variant: str | None = None,
    cascade: bool = True,
    min_side: int | None = None,
) -> Iterator[ScanResult]:
    """Scan files, folders, globs, URLs (`s3://...`, `file://...`: imgcheck.sources) or `-`
    for stdin, and yield one ScanResult per image.

    The model loads here, so a bad model raises `ModelError` at the call, not on the first
    `next()`. Results stream in input order; `path` is the path as found (a non-UTF-8 name is
    a `str` with surrogate escapes that opens the file; reports escape it for display).

    `variant`: None or "fp32" runs the calibrated model; "int8" (network part quantized, scores
    differ slightly) or "fp16" (for CUDA) run the builds the model folder's manifest lists
    under `variants`; one it does not list raises `ModelError`.

    `cascade`: score a few tiles of each image first and stop where they already say "real",
    when the model's manifest carries a cascade calibrated for this scan (`imgcheck.cascade`);
    False scores every tile of every image.

    `min_side`: an image with a side below it is a `too_small` row, not scored (None: the
    detector's tile, 128 px for the shipped model; 1 scores everything).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # scan("photos") means the folder, not its letters
    scanner = Scanner(
        model,
        device,
        batch_size=batch_size,
        workers=workers,
        threshold=threshold,
        view=view,
        max_pixels=max_pixels,
        thumbnails=thumbnails,
        variant=variant,
        cascade=cascade,
        min_side=min_side,
    )
    items = iter_sources(paths, recursive=recursive, include=include, exclude=exclude, stdin=stdin)
    return scanner.run(items)


Prepared = _Prepared  # public name for engines that build batches themselves (engine_ray)

__all__ = ["DEFAULT_BATCH_SIZE", "Prepared", "Scanner", "parse_view", "prepare", "scan"]
