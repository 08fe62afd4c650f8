"""What `imgcheck scan --cache` costs on a first scan and saves on the next ones, in one run.

The same corpus (real JPEGs 0.3-3.4 MP, as `bench_cascade.py` cuts them) scanned by the local
engine, through the same `ScanCache.merge` the command line wraps around `Scanner.run`:

  - no cache: the scan as it is without --cache;
  - cold: an empty cache (every file read and hashed, every row stored);
  - warm: the same files again (every row from the cache; files recognised by size, mtime
    and inode, not read);
  - checkout: every file given a new mtime first, as a fresh `git clone` or CI checkout does
    (each file read and hashed again, rows from the cache).

    python benchmarks/bench_cache.py [--n 200] [--rounds 3] [--model DIR] [--photos DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus


def timed_scan(scanner: Any, paths: list[Path], folder: Path | None) -> tuple[float, list, int]:
    """Seconds, rows and cache hits of one scan (folder None: no cache)."""
    from imgcheck.cli_scan import _model_info, _open_cache
    from imgcheck.inputs import InputItem
    from imgcheck.options import ScanOptions

    start = time.perf_counter()
    items = (InputItem(str(p)) for p in paths)
    if folder is None:
        rows, hits = list(scanner.run(items)), 0
    else:
        # Opened as `imgcheck scan --cache FOLDER` opens it: the same key of settings.
        cache = _open_cache(ScanOptions(cache=folder), "csv", scanner, _model_info(scanner))
        assert cache is not None
        rows = list(cache.merge(items, scanner.run))
        cache.close()
        hits = cache.hits
    return time.perf_counter() - start, rows, hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _corpus.add_photo_args(ap)
    args = ap.parse_args(argv)
    corpus = _corpus.photo_corpus(ap, args)
    from imgcheck.scanning import Scanner

    with tempfile.TemporaryDirectory() as tmp:
        # A copy, so that touching mtimes leaves the shared corpus cache as it is.
        folder = Path(tmp) / "images"
        folder.mkdir()
        paths = []
        for p in corpus.paths:
            shutil.copyfile(p, folder / p.name)
            paths.append(folder / p.name)
        _corpus.warm_cache(paths)
        scanner = Scanner(args.model)
        times: dict[str, list[float]] = {"no cache": [], "cold": [], "warm": [], "checkout": []}
        hits: dict[str, int] = {}
        reference: list[tuple] | None = None
        for r in range(args.rounds):
            cache_dir = Path(tmp) / f"cache{r}"
            for name in times:
                if name == "checkout":
                    stamp = time.time_ns() + 1_000_000_000
                    for p in paths:
                        os.utime(p, ns=(stamp, stamp))
                seconds, rows, got = timed_scan(
                    scanner, paths, None if name == "no cache" else cache_dir
                )
                times[name].append(seconds)
                hits[name] = got
                key = [(Path(x.path).name, x.status.value, x.verdict.value, x.score) for x in rows]
                if reference is None:
                    reference = key
                elif key != reference:
                    print(f"rows differ in {name}")
                    return 1
    rate = {k: len(paths) / float(np.median(v)) for k, v in times.items()}
    print(f"machine: {_corpus.machine()}")
    print(f"corpus: {len(paths)} real JPEGs 0.3-3.4 MP from {args.photos}")
    for name, value in rate.items():
        ratio = value / rate["no cache"]
        print(
            f"  {name:9s} {value:8.1f} images/s  ({ratio:6.2f}x no cache; "
            f"{hits[name]} rows from the cache; median of {args.rounds} rounds)"
        )
    print("rows identical in every mode: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
