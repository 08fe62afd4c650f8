"""Megapixels/s of `imgcheck colorize` against a naive loop, measured in one run.

    python benchmarks/bench_colorize.py [--n 10] [--model DIR] [--synthetic | --photos DIR]

On N grayscale JPEGs of mixed sizes (0.3-4 MP by default), measures in MP/s of input pixels:
  (a) I/O only: decode (colorize's own `_load`: safe decode, upright, sRGB) and JPEG encode of
      the same pixels (its `save_image`), in colorize's thread count, no model;
  (b) model-only: `Colorizer.run` on each already-decoded image (mixed sizes never share a
      batch, so this is one run per image, as in the command), `lanes` runs side by side as
      the command runs them (`Colorizer(lanes=0)`); (b1) the same one run at a time on all
      cores (`--lanes 1`, the engine before lanes);
  (c) `imgcheck colorize` end-to-end: the CLI in a subprocess into a fresh output folder;
      (c1) the same with `--lanes 1`;
  (d) naive: one image at a time: decode, one `session.run`, encode, no threads.
Rates come from total megapixels over time; the CLI's own timer (which includes the model load
but not the interpreter start) gives (c); its wall time is printed too. (a) and (b) are
measured before and after the CLI and naive runs and averaged.
Ratios: colorize / naive, colorize / bound with bound = 1 / (1/a + 1/b), and lanes / one
run at a time, model-only (b / b1) and end-to-end (c / c1).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus


def io_only(paths: list[Path], workers: int, out: Path) -> tuple[float, list[np.ndarray]]:
    """(a) seconds to decode (as colorize does) and encode every image, in `workers` threads."""
    from PIL import Image

    from imgcheck.colorizing import Job, _load, _Loaded
    from imgcheck.outputs import save_image

    def one(path: Path) -> np.ndarray:
        loaded = _load(Job(str(path), str(path)), None)
        if not isinstance(loaded, _Loaded):
            raise RuntimeError(f"{path}: {loaded.error}")
        save_image(Image.fromarray(loaded.rgb, "RGB"), out / path.name, "JPEG", 92)
        return loaded.rgb

    start = time.perf_counter()
    with ThreadPoolExecutor(workers, thread_name_prefix="bench-io") as pool:
        arrays = list(pool.map(one, paths))
    return time.perf_counter() - start, arrays


def model_only(colorizer: Any, arrays: list[np.ndarray]) -> float:
    """(b) seconds for `Colorizer.run` on each decoded image (after one warm-up run), with
    `colorizer.lanes` runs side by side as `run_jobs` does."""
    colorizer.run(arrays[0][None])
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, colorizer.lanes), thread_name_prefix="bench-lane") as pool:
        list(pool.map(lambda arr: colorizer.run(arr[None]), arrays))
    return time.perf_counter() - start


def naive(colorizer: Any, paths: list[Path], out: Path) -> float:
    """(d) decode, one session.run, encode; one image at a time, no threads."""
    from PIL import Image, ImageOps

    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        (result,) = colorizer.session.run(["colorized"], {"image": rgb[None]})
        Image.fromarray(result[0], "RGB").save(out / path.name, "JPEG", quality=92)
    return time.perf_counter() - start


_SUMMARY = re.compile(r"imgcheck: (\d+) images in ([\d.]+) s \(([\d.]+) MP/s")


def cli_colorize(folder: Path, model: Path, args: argparse.Namespace, lanes: int = 0) -> dict:
    """(c) `imgcheck colorize FOLDER -o OUT --lanes LANES` in a subprocess, into a fresh folder."""
    out = Path(tempfile.mkdtemp(prefix="colorize-out-", dir=args.work))
    try:
        cmd = [*_corpus.imgcheck_cmd(), "colorize", str(folder), "-o", str(out)]
        cmd += ["--model", str(model), "--device", args.device, "--lanes", str(lanes)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        m = _corpus.run_measured(cmd)
        if m.returncode != 0:
            raise RuntimeError(f"imgcheck colorize exited {m.returncode}: {m.stderr[-500:]}")
        written = sorted(p for p in out.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    text = m.stdout + m.stderr
    found = _SUMMARY.search(text)
    if not found:
        raise RuntimeError(f"no summary line from imgcheck colorize: {text.strip()[-300:]}")
    return {
        "images": int(found.group(1)),
        "written": len(written),
        "cli_s": float(found.group(2)) or m.seconds,  # printed to 0.1 s: 0.0 on tiny runs
        "wall_s": m.seconds,
        "rss": m.max_rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="corpus size N (default 10)")
    _corpus.add_corpus_args(parser)
    parser.add_argument("--workers", type=int, default=0, help="I/O threads (0: colorize's)")
    parser.add_argument("--batch-size", type=int, default=0, help="(0: colorize's default)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--work", type=Path, default=_corpus.DEFAULT_WORK, help="cache folder")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = _corpus.parse_args(parser, argv)

    from imgcheck.colorizing import Colorizer, default_workers

    t_start = time.perf_counter()
    model, model_source, corpus = _corpus.model_and_corpus(args, grey=True)
    n, mp = len(corpus.paths), corpus.megapixels
    workers = args.workers or default_workers()
    colorizer = Colorizer(model, args.device, lanes=0)
    one_run = Colorizer(model, args.device, lanes=1)
    sizes = [w * h / 1e6 for w, h in corpus.sizes]
    print(f"machine:   {_corpus.machine()}")
    print(f"model:     {model_source}")
    print(
        f"colorizer: {colorizer.info.path.name} on {colorizer.provider}, {colorizer.lanes} lane(s)"
    )
    print(
        f"corpus:    {n} grey JPEGs, {min(sizes):.2f}-{max(sizes):.2f} MP ({mp:.1f} MP in all), "
        f"{corpus.source}; {workers} I/O threads"
    )

    scratch = Path(tempfile.mkdtemp(prefix="bench-colorize-", dir=args.work))
    try:
        # Interleaved, lanes first then one run, then the other way round: drift cancels.
        a1, arrays = io_only(corpus.paths, workers, scratch)
        b1 = model_only(colorizer, arrays)
        o1 = model_only(one_run, arrays)
        del arrays
        d = naive(one_run, corpus.paths, scratch)
        cli = cli_colorize(corpus.folder, model, args)
        cli_one = cli_colorize(corpus.folder, model, args, lanes=1)
        cli_one2 = cli_colorize(corpus.folder, model, args, lanes=1)
        cli2 = cli_colorize(corpus.folder, model, args)
        a2, arrays = io_only(corpus.paths, workers, scratch)
        o2 = model_only(one_run, arrays)
        b2 = model_only(colorizer, arrays)
        del arrays
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for c in (cli, cli2, cli_one, cli_one2):
        if c["written"] != n:
            raise RuntimeError(f"imgcheck colorize wrote {c['written']} files for {n} inputs")

    rate = {
        "io": 2 * mp / (a1 + a2),
        "model": 2 * mp / (b1 + b2),
        "model_one_run": 2 * mp / (o1 + o2),
        "naive": mp / d,
        "colorize": 2 * mp / (cli["cli_s"] + cli2["cli_s"]),
        "colorize_wall": 2 * mp / (cli["wall_s"] + cli2["wall_s"]),
        "colorize_one_run": 2 * mp / (cli_one["cli_s"] + cli_one2["cli_s"]),
    }
    rate["bound"] = 1 / (1 / rate["io"] + 1 / rate["model"])
    ratios = {
        "colorize/naive": rate["colorize"] / rate["naive"],
        "colorize/bound": rate["colorize"] / rate["bound"],
        "model lanes/one run": rate["model"] / rate["model_one_run"],
        "colorize lanes/one run": rate["colorize"] / rate["colorize_one_run"],
    }
    print("\nthroughput (megapixels/s of input; images/s)")
    print(
        f"  (a) decode + encode only   {rate['io']:7.2f} MP/s {rate['io'] * n / mp:7.2f} img/s"
        f"   (runs {mp / a1:.2f}, {mp / a2:.2f})"
    )
    print(
        f"  (b) model only             {rate['model']:7.2f} MP/s"
        f" {rate['model'] * n / mp:7.2f} img/s   (runs {mp / b1:.2f}, {mp / b2:.2f})"
    )
    print(
        f"  (b1) model, one run        {rate['model_one_run']:7.2f} MP/s"
        f" {rate['model_one_run'] * n / mp:7.2f} img/s   (runs {mp / o1:.2f}, {mp / o2:.2f})"
    )
    print(f"      bound 1/(1/a + 1/b)    {rate['bound']:7.2f} MP/s")
    print(
        f"  (c) imgcheck colorize      {rate['colorize']:7.2f} MP/s"
        f" {rate['colorize'] * n / mp:7.2f} img/s   ({cli['cli_s']:.1f} s by the CLI's timer, "
        f"model load included; runs {mp / cli['cli_s']:.2f}, {mp / cli2['cli_s']:.2f})"
    )
    print(
        f"  (c1) colorize --lanes 1    {rate['colorize_one_run']:7.2f} MP/s"
        f" {rate['colorize_one_run'] * n / mp:7.2f} img/s   (runs {mp / cli_one['cli_s']:.2f}, "
        f"{mp / cli_one2['cli_s']:.2f}; peak RSS {cli_one['rss'] / 2**20:.0f} MiB)"
    )
    print(
        f"      wall, incl. start      {rate['colorize_wall']:7.2f} MP/s"
        f"                 ({cli['wall_s']:.2f} s; peak RSS {cli['rss'] / 2**20:.0f} MiB)"
    )
    print(
        f"  (d) naive loop             {rate['naive']:7.2f} MP/s"
        f" {rate['naive'] * n / mp:7.2f} img/s"
    )
    print("ratios (measured in this run)")
    print(f"  colorize / naive          {ratios['colorize/naive']:7.2f}")
    print(f"  colorize / bound          {ratios['colorize/bound']:7.2f}")
    print(f"  model, lanes / one run    {ratios['model lanes/one run']:7.2f}")
    print(f"  colorize, lanes / one run {ratios['colorize lanes/one run']:7.2f}")
    total = time.perf_counter() - t_start
    print(f"benchmark wall time {total:.0f} s")
    if args.json:
        report = {
            "machine": _corpus.machine(),
            "model": model_source,
            "n": n,
            "megapixels": mp,
            "workers": workers,
            "rates_mp_s": rate,
            "cli": [cli, cli2],
            "cli_one_run": [cli_one, cli_one2],
            "ratios": ratios,
            "seconds": total,
        }
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
