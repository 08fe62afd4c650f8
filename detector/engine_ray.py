"""`imgcheck scan --engine ray`: the same scan, spread over a Ray cluster with Ray Data.

The local engine (`scanning.Scanner.run`) decodes in threads and scores in the main thread of
one process. This engine runs the very same two steps as Ray Data stages, so its rows and scores
are the local engine's (tests compare them to 1e-6):

    driver:  list the inputs (`sources.iter_sources`: the local walk, or fsspec for URLs)
             -> blocks of (index, path) -> Ray Data
    stage 1  `map_batches(_decode_block)`, tasks of 1 CPU: `scanning.prepare` per path (decode,
             grey check, view crops); no model loaded; bad files become error rows here
    stage 2  `map_batches(_ScoreActor)`, an actor pool: each actor builds one `Scanner` (the
             ONNX session is loaded once per actor, with `--device cuda` on one GPU each) and
             calls `Scanner.score`, the runtime's one batch-scoring entry point
    driver:  `iter_batches` -> `ScanResult`s, put back into listing order, yielded to the CLI,
             which writes the reports, the resume journal, progress and summary as for local.

Ray Data streams between the stages with back-pressure, so the object store holds a bounded
number of blocks of crops whatever the catalog size; the listing itself (about 100 bytes per
path) is held by the driver. The model files are sent to the actors with the job, so workers
need imgcheck installed but not the model folder; input paths must be readable by the workers
(a shared file system, or URLs to object storage). `FSSPEC_*` and `AWS_ENDPOINT_URL*`
variables of the driver are passed to the workers (object storage settings); credentials come
from each node's own environment or role.

`ray` is imported only here and only when this engine runs: `imgcheck --help` and the local
engine never load it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from imgcheck.errors import first_line
from imgcheck.inputs import InputItem
from imgcheck.options import ScanOptions
from imgcheck.results import ScanResult, Status
from imgcheck.session import ModelError

#: Paths per block of the input dataset: small enough that every CPU gets work on a small
#: folder, large enough that a task's overhead is spread over many images.
MAX_BLOCK_ROWS = 64
_FORWARD_ENV = ("FSSPEC_", "AWS_ENDPOINT_URL")
DECODE_MEMORY = 256 << 20  # bytes a decode task reserves (Ray's logical memory resource)


class EngineError(ModelError):
    """Ray is missing, the cluster cannot be reached or cannot run the job: one line, exit 2
    (a `ModelError` so the CLI's error handling treats it alike)."""


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise EngineError(
            "--engine ray needs Ray Data: pip install 'imgcheck-colorize[ray]' "
            "(ray[data], fsspec, pyarrow, s3fs)"
        ) from None
    return ray



def _explain(exc: BaseException) -> str:
    """The message of the ModelError behind a Ray error (an actor could not load the model),
    else the Ray error's first line."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ModelError) and not isinstance(cur, EngineError):
            return str(cur)
        cause = getattr(cur, "cause", None)
        cur = cause if isinstance(cause, BaseException) else cur.__cause__
    text = str(exc)
    marker = "ModelError: "
    rest = text.split(marker, 1)[1].strip() if marker in text else ""
    if rest:  # the worker's exception, only as text
        return rest.splitlines()[0]
    return f"the Ray job failed: {type(exc).__name__}: {first_line(exc)}"


# -- stage 1: decode (Ray tasks) ------------------------------------------------------------------

_BUDGET: Any = None  # one decode memory budget per worker process


def _decode_block(
    batch: Any,
    *,
    spec: dict[str, Any],
    max_pixels: int | None,
    thumbnails: bool,
    min_side: int | None = None,
) -> Any:
    """Paths -> prepared rows (the local engine's `scanning.prepare`), crops as bytes."""
    global _BUDGET
    import numpy as np

    from imgcheck.decode import MemoryBudget
    from imgcheck.reports.parquet import pyarrow, to_table
    from imgcheck.scanning import prepare
    from imgcheck.view import ViewSpec

    pa = pyarrow()
    if _BUDGET is None:
        from imgcheck.cli_common import pixel_limit

        pixel_limit(max_pixels or 0)  # Pillow's own limits in this worker, as on the driver
        _BUDGET = MemoryBudget()
    view = ViewSpec.from_dict(spec)
    indices = batch.column("index").to_pylist()
    paths = [os.fsdecode(p) for p in batch.column("path").to_pylist()]
    results, crops, shapes = [], [], []
    for path in paths:
        prep = prepare(
            InputItem(path),
            view,
            max_pixels=max_pixels,
            budget=_BUDGET,
            thumbnails=thumbnails,
            min_side=min_side,
        )
        prep.result.boxes = list(prep.boxes)
        results.append(prep.result)
        if prep.crops is None:
            crops.append(None)
            shapes.append(None)
        else:
            arr = np.ascontiguousarray(prep.crops, dtype=np.uint8)
            crops.append(arr.tobytes())
            shapes.append(list(arr.shape))
    return to_table(
        results,
        full=True,
        extra={
            "index": pa.array(indices, pa.int64()),
            "crops": pa.array(crops, pa.large_binary()),
            "crops_shape": pa.array(shapes, pa.list_(pa.int64())),
        },
    )


# -- stage 2: score (a Ray actor pool) -------------------------------------------------------------


class _ScoreActor:
    """One `Scanner` per actor: the ONNX session is loaded once, in `__init__`."""

    def __init__(
        self,
        *,
        files: list[Any],
        model_file: str | None,
        options: ScanOptions,
        max_pixels: int | None,
        threads: int | None,
    ) -> None:
        import tempfile

        import ray

        from imgcheck.scanning import Scanner

        folder = Path(tempfile.mkdtemp(prefix="imgcheck-model-"))
        for name, data in ray.get(files[0]).items():  # [ObjectRef]: put once by the driver
            (folder / name).write_bytes(data)
        model = folder / model_file if model_file else folder
        # Built from the driver's options exactly as the local engine builds its Scanner
        # (threshold, view, variant, cascade...), on this actor's device and thread count.
        self.scanner = Scanner.from_options(
            replace(options, model=model), max_pixels=max_pixels, threads=threads
        )

    def __call__(self, batch: Any) -> Any:
        import numpy as np

        from imgcheck.reports.parquet import from_table, pyarrow, to_table
        from imgcheck.scanning import Prepared

        pa = pyarrow()
        results = from_table(batch)
        crops = batch.column("crops").to_pylist()
        shapes = batch.column("crops_shape").to_pylist()
        todo = []
        for result, data, shape in zip(results, crops, shapes, strict=True):
            if data is None:
                continue
            arr = np.frombuffer(data, dtype=np.uint8).reshape(shape)
            todo.append(Prepared(result, arr, list(result.boxes)))
        size = self.scanner.batch_size
        for start in range(0, len(todo), size):
            self.scanner.score(todo[start : start + size])
        return to_table(
            results,
            full=True,
            extra={
                "index": batch.column("index"),
                "provider": pa.array([self.scanner.provider] * len(results), pa.string()),
            },
        )


# -- driver ---------------------------------------------------------------------------------------


def _unanswered(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at a `host:port` (or `ray://host:port`) address, or None (it
    answers, or the address is not of that form)."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()


def _probe(address: str | None) -> None:
    """An address that nothing answers on is one error line now, not minutes of Ray's own
    connection retries."""
    if not address or address in ("auto", "local"):
        return
    reason = _unanswered(address)
    if reason is not None:
        raise EngineError(f"no Ray cluster answers at {address}: {reason}")


def _recorded_cluster_is_dead(ray: Any) -> bool:
    """With no address, `ray.init()` joins the cluster `ray start` last recorded on this
    machine and waits for it forever if that cluster is gone: True when it is gone."""
    try:
        from ray._private.utils import read_ray_address

        recorded = read_ray_address()
    except Exception:  # a private helper: if it moves, let Ray decide as it always did
        return False
    return bool(recorded) and _unanswered(recorded, timeout=2.0) is not None


def _model_files(info: Any, bare: bool) -> tuple[dict[str, bytes], str | None]:
    """What an actor needs to load exactly the driver's model: the ONNX file, plus the
    manifest for a model folder (the actor checks the sha256 again)."""
    path = Path(info.path)
    if bare:
        return {path.name: path.read_bytes()}, path.name
    files = {path.name: path.read_bytes(), "manifest.json": (path.parent / "manifest.json").read_bytes()}
    return files, None


class RayEngine:
    """`Scanner`'s face for the CLI (`warnings`, `provider`, `threshold`, `variant`, `info`,
    `model_name`, `thumbnails`, `run(items)`), running on Ray.

    The driver loads the model once on its CPU first: a bad model, view or threshold is an
    error before any cluster work, and the report header gets the threshold and model."""

    def __init__(
        self, options: ScanOptions, *, max_pixels: int | None, address: str | None = None
    ) -> None:
        from imgcheck.scanning import Scanner

        self.options = options
        self.address = address
        self.device = options.device
        # The driver's check of the model; the actors load it again on their own device.
        self.local = Scanner.from_options(
            replace(options, device="cpu"), max_pixels=max_pixels, threads=1
        )
        self.max_pixels = max_pixels
        self.info = self.local.info
        self.variant = self.local.variant
        self.threshold = self.local.threshold
        self.spec = self.local.spec
        self.warnings = list(self.local.warnings)
        self.provider = "cpu"  # until the actors say what they ran on
        self.thumbnails = False
        # Joined now, so a cluster that cannot be reached or cannot run the job (no GPUs for
        # --device cuda, too few CPUs for --workers) is one error line before any report.
        self._ray = self._connect()
        self._compute = self._pool(self._ray)
        from imgcheck.sources import is_url, local_path

        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        local = [p for p in options.paths if not is_url(p) or local_path(p) is not None]
        if local and len(nodes) > 1:
            self.warnings.append(
                f"the Ray cluster has {len(nodes)} nodes and reads local paths on each of them "
                f"({local[0]}...): every node must see the same files at the same paths "
                "(a shared file system), or name them as URLs (s3://...)"
            )

    @property
    def model_name(self) -> str:
        return self.local.model_name

    # -- cluster --------------------------------------------------------------------------

    def _connect(self) -> Any:
        ray = _import_ray()
        address = self.address or os.environ.get("RAY_ADDRESS")
        _probe(address)
        if not address and not ray.is_initialized() and _recorded_cluster_is_dead(ray):
            address = "local"  # a cluster `ray start` left behind is gone: start our own
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if not ray.is_initialized():
            env = {
                k: v for k, v in os.environ.items() if k.startswith(_FORWARD_ENV) and v
            }
            kwargs: dict[str, Any] = {
                "address": address,
                "logging_level": logging.ERROR,
                "log_to_driver": False,
                "configure_logging": True,
            }
            if env:
                kwargs["runtime_env"] = {"env_vars": env}
            if not address or address == "local":
                kwargs["include_dashboard"] = False  # a local one-machine cluster
            try:
                ray.init(**kwargs)
            except Exception as exc:
                where = self.address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
                raise EngineError(f"cannot start or reach Ray ({where}): {first_line(exc)}") from None
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        for attr in ("print_on_execution_start", "enable_operator_progress_bars"):
            if hasattr(ctx, attr):
                setattr(ctx, attr, False)
        return ray

    def _pool(self, ray: Any) -> tuple[Any, dict[str, Any], int | None]:
        """(compute strategy, resources per actor, ONNX threads per actor)."""
        resources = ray.cluster_resources()
        cpus = int(resources.get("CPU", 1))
        if self.device == "cuda":
            gpus = int(resources.get("GPU", 0))
            if gpus < 1:
                raise EngineError(
                    "--device cuda: the Ray cluster has no GPUs (ray status lists its resources)"
                )
            size = self.options.workers or gpus
            per_actor: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
            threads = None
        else:
            # One CPU per actor, one ONNX thread each. Decoding costs about a fifth of what
            # scoring does with the shipped detector (benchmarks/RESULTS.md), so by default up
            # to four fifths of the CPUs score and the rest (at least one) decode.
            size = self.options.workers or max(1, min(cpus - 1, cpus * 4 // 5))
            if self.options.workers and self.options.workers >= cpus:
                raise EngineError(
                    f"--workers {self.options.workers} needs {self.options.workers + 1} CPUs in "
                    f"the Ray cluster (one per scoring actor, one for decoding); it has {cpus}"
                )
            per_actor = {"num_cpus": 1}
            threads = 1
        if self.options.workers:
            compute = ray.data.ActorPoolStrategy(size=size)
        else:
            compute = ray.data.ActorPoolStrategy(min_size=1, max_size=size)
        return compute, per_actor, threads

    # -- the scan -------------------------------------------------------------------------

    def run(self, items: Iterable[InputItem]) -> Iterator[ScanResult]:
        """Stream one row per input, in input order (see the module doc)."""
        listing = list(items)
        ready: dict[int, ScanResult] = {}
        todo: list[tuple[int, str]] = []
        for index, item in enumerate(listing):
            if item.error is not None:
                ready[index] = ScanResult(item.path, Status.ERROR, error=item.error)
            else:
                todo.append((index, item.path))
        stream = self._execute(todo) if todo else iter(())
        following = 0
        for index, result in stream:
            result.path = listing[index].path  # the real path (Arrow carries escaped text)
            ready[index] = result
            while following in ready:
                yield ready.pop(following)
                following += 1
        while following in ready:
            yield ready.pop(following)
            following += 1
        if following != len(listing):  # never silently short: every input has its row
            raise EngineError(
                f"the Ray job returned {following} of {len(listing)} rows; rerun with the "
                "same -o to finish the rest"
            )

    def _execute(self, todo: list[tuple[int, str]]) -> Iterator[tuple[int, ScanResult]]:
        ray = self._ray
        from imgcheck.reports.parquet import from_table, pyarrow

        pa = pyarrow()
        compute, per_actor, threads = self._compute
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        rows = max(1, min(MAX_BLOCK_ROWS, math.ceil(len(todo) / (4 * cpus))))
        blocks = [
            pa.table(
                {
                    "index": pa.array([i for i, _ in todo[s : s + rows]], pa.int64()),
                    "path": pa.array([os.fsencode(p) for _, p in todo[s : s + rows]], pa.binary()),
                }
            )
            for s in range(0, len(todo), rows)
        ]
        opts = self.options
        bare = opts.model is not None and Path(opts.model).suffix.lower() == ".onnx"
        files, model_file = _model_files(self.info, bare)
        # In a list, so Ray hands the actors the reference (held here for the whole job) and
        # not the bytes as constructor arguments that a restarted actor could not get back.
        files_ref = ray.put(files)
        actor_options = replace(opts, device="cuda" if self.device == "cuda" else "cpu")
        ds = ray.data.from_arrow(blocks)
        ds = ds.map_batches(
            _decode_block,
            batch_format="pyarrow",
            batch_size=None,
            num_cpus=1,
            # The decoder's working set, so Ray does not pack more decodes onto a node than
            # its memory holds. Also keeps this stage apart from the actors' (Ray fuses
            # stages with equal resources, and then an actor decodes and scores in turn
            # while the CPUs left for decoding sit idle).
            memory=DECODE_MEMORY,
            fn_kwargs={
                "spec": self.spec.to_dict(),
                "max_pixels": self.max_pixels,
                "thumbnails": self.thumbnails,
                "min_side": self.local.min_side,
            },
        )
        ds = ds.map_batches(
            _ScoreActor,
            batch_format="pyarrow",
            batch_size=opts.batch_size,  # one Scanner.score call per actor call, as local
            compute=compute,
            fn_constructor_kwargs={
                "files": [files_ref],
                "model_file": model_file,
                "options": actor_options,
                "max_pixels": self.max_pixels,
                "threads": threads,
            },
            **per_actor,
        )
        providers: set[str] = set()
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                providers.update(batch.column("provider").to_pylist())
                indices = batch.column("index").to_pylist()
                yield from zip(indices, from_table(batch), strict=True)
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except Exception as exc:
            raise EngineError(_explain(exc)) from None
        finally:
            if providers:
                self.provider = ",".join(sorted(providers))


__all__ = ["EngineError", "RayEngine"]
