"""`imgcheck scan --engine ray` against the local engine on the same corpus, and what Ray costs.

    python benchmarks/bench_ray.py [--n 64] [--factor 3] [--workers 1 2] [--photos DIR | --synthetic]

Measures, on N JPEGs of mixed sizes (`_corpus.make_corpus`, 0.3-4 MP; photos from
../shared/photos/extra when present), with the engines run in this process exactly as the CLI
runs them (`Scanner.run`, `RayEngine.run`):
  (a) the local engine (decode threads + ONNX Runtime on every core);
  (b) the Ray engine with W scoring actors for each W in --workers, on a local Ray instance
      started by this script with W + 1 logical CPUs (one per actor, one left for the decode
      tasks);
  (c) the work one actor and one decode task do, serially in one process: `scanning.prepare`
      per image and `Scanner.score` (1 ONNX thread) per batch. The per-image overhead Ray adds
      is Ray's steady time per image minus max(decode, score) (the two stages overlap);
  (d) the driver's own cost per row: Arrow -> ScanResult -> CSV reporter (its ceiling, rows/s);
  (e) the driver's memory per listed path (the listing is held while the job runs).
Each engine scans N images once to warm up (Ray keeps the worker processes it started), then N
and factor x N images (hard links): the steady rate is the difference, the start-up what is left
(for Ray: a new dataset and actor pool, the model loaded in each actor).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus

REPO = Path(__file__).resolve().parent.parent
EXTRA_PHOTOS = REPO.parent / "shared" / "photos" / "extra"


def timed(engine: Any, folder: Path) -> tuple[int, float]:
    """(images, seconds) of `engine.run` over `folder`, start-up included (for Ray: a new
    dataset and actor pool, the model loaded in each actor)."""
    from imgcheck.inputs import iter_inputs

    start = time.perf_counter()
    n = sum(1 for _ in engine.run(iter_inputs([str(folder)])))
    return n, time.perf_counter() - start


def steady(engine: Any, small_folder: Path, big_folder: Path) -> tuple[float, float, float]:
    """(steady images/s, start-up s, end-to-end images/s of the big run): the two runs'
    difference is the steady rate (start-up cancels out), start-up what remains."""
    timed(engine, small_folder)  # warm-up: Ray keeps the worker processes it started for later jobs
    small, big = timed(engine, small_folder), timed(engine, big_folder)
    per_image = (big[1] - small[1]) / max(1, big[0] - small[0])
    rate = 1 / per_image if per_image > 0 else float("inf")
    return rate, max(0.0, big[1] - big[0] * per_image), big[0] / big[1]


def serial_work(model: Path, paths: list[Path], batch_size: int) -> tuple[float, float]:
    """(c) seconds per image of decode (prepare) and of scoring (1 ONNX thread), serially."""
    from imgcheck.decode import MemoryBudget
    from imgcheck.inputs import InputItem
    from imgcheck.scanning import Scanner, prepare

    scanner = Scanner(model, "cpu", batch_size=batch_size, threads=1)
    budget = MemoryBudget()
    start = time.perf_counter()
    prepared = [prepare(InputItem(str(p)), scanner.spec, budget=budget) for p in paths]
    decode = (time.perf_counter() - start) / len(paths)
    scanner.score([prepare(InputItem(str(paths[0])), scanner.spec)])  # warm-up
    todo = [p for p in prepared if p.crops is not None]
    start = time.perf_counter()
    for i in range(0, len(todo), batch_size):
        scanner.score(todo[i : i + batch_size])
    return decode, (time.perf_counter() - start) / len(paths)


def driver_row_cost(rows: int = 20_000) -> float:
    """(d) seconds per row of what the driver does with each row: Arrow -> ScanResult -> CSV."""
    from imgcheck.reports.csv_report import CsvReporter
    from imgcheck.reports.parquet import from_table, to_table
    from imgcheck.results import ScanResult, Status, Verdict

    results = [
        ScanResult(f"s3://bucket/catalog/{i:08d}.jpg", Status.OK, 0.25, Verdict.REAL, 640, 480, "JPEG")
        for i in range(rows)
    ]
    for r in results:
        r.boxes = [(0, 0, 128, 128)] * 12
        r.view_size = (512, 384)
    table = to_table(results, full=True, extra={"index": list(range(rows))})
    start = time.perf_counter()
    reporter = CsvReporter(io.StringIO())
    for result in from_table(table):
        reporter.add(result)
    return (time.perf_counter() - start) / rows


def listing_bytes(n: int = 100_000) -> float:
    """(e) driver memory per listed path: the InputItem list the engine holds, plus its row
    index (Python objects; the Arrow copy in the object store is another ~50 bytes)."""
    import tracemalloc

    from imgcheck.inputs import InputItem

    tracemalloc.start()
    listing = [InputItem(f"s3://bucket/catalog/2026/{i:08d}.jpg") for i in range(n)]
    todo = [(i, item.path) for i, item in enumerate(listing)]
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del listing, todo
    return used / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="images in the corpus")
    parser.add_argument("--factor", type=int, default=3, help="the big run: factor x N images")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actors")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--work", type=Path, default=_corpus.DEFAULT_WORK)
    _corpus.add_corpus_args(parser)
    args = _corpus.parse_args(parser, argv)
    if args.photos is None and not args.synthetic and EXTRA_PHOTOS.is_dir():
        args.photos = EXTRA_PHOTOS
    wall = time.perf_counter()
    model, model_source, corpus = _corpus.model_and_corpus(args)
    print(f"machine:  {_corpus.machine()}")
    print(f"model:    {model_source}")
    print(f"corpus:   {len(corpus.paths)} JPEGs, {corpus.megapixels:.1f} MP, {corpus.source}")
    print(f"command:  python benchmarks/bench_ray.py {' '.join(argv or sys.argv[1:])}".rstrip())
    from imgcheck.engine_ray import RayEngine
    from imgcheck.options import ScanOptions
    from imgcheck.scanning import Scanner

    opts = ScanOptions(paths=[str(corpus.folder)], model=model, batch_size=args.batch_size)
    big = _corpus.linked_copies(corpus, args.factor, args.work)
    n, n_big = len(corpus.paths), len(corpus.paths) * args.factor
    print(f"throughput (the engines in this process, as the CLI runs them, on {n} and {n_big}")
    print("images: steady = from the difference, start-up = the rest)")
    rate, startup, e2e = steady(Scanner.from_options(opts), corpus.folder, big)
    print(f"  (a) local engine          {rate:7.2f} img/s steady   start-up {startup:5.1f} s   "
          f"end-to-end {e2e:6.2f} img/s")  # fmt: skip

    import ray

    ray_rates = {}
    for workers in args.workers:
        ray.init(
            num_cpus=workers + 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=256 << 20,
            _node_ip_address="127.0.0.1",
            address="local",  # a new instance, never a cluster `ray start` left recorded
        )
        try:
            engine = RayEngine(replace(opts, engine="ray", workers=workers), max_pixels=None)
            rate, startup, e2e = steady(engine, corpus.folder, big)
        finally:
            ray.shutdown()
        ray_rates[workers] = rate
        label = f"{workers} actor{'s' if workers > 1 else ''}"
        print(f"  (b) ray, {label:9s}       {rate:7.2f} img/s steady   start-up {startup:5.1f} s   "
              f"end-to-end {e2e:6.2f} img/s   ({workers + 1} logical CPUs)")  # fmt: skip

    decode, score = serial_work(model, corpus.paths, args.batch_size)
    bound = 1 / max(decode, score)
    print("one actor's work, serially in one process (1 ONNX thread)")
    print(f"  (c) decode {decode * 1e3:6.1f} ms/img, score {score * 1e3:6.1f} ms/img -> "
          f"{bound:.2f} img/s when the stages overlap")  # fmt: skip
    if 1 in ray_rates:
        overhead = 1 / ray_rates[1] - max(decode, score)
        print(f"      Ray's overhead per image (1 actor): {overhead * 1e3:6.1f} ms "
              f"({1 / ray_rates[1] * 1e3:.1f} ms/img steady vs {max(decode, score) * 1e3:.1f})")  # fmt: skip
    row = driver_row_cost()
    print(f"  (d) driver per row        {row * 1e6:7.1f} us -> ceiling {1 / row:,.0f} rows/s")
    print(f"  (e) driver memory per listed path {listing_bytes():.0f} bytes")
    print(f"benchmark wall time {time.perf_counter() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
