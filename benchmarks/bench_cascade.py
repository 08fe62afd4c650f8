"""Scan speed with and without the cascade, on a catalog-like mix, measured in one run.

    python benchmarks/bench_cascade.py [--n 200] [--rounds 3] [--model DIR] [--before DIR]

The corpus: N JPEGs of 0.3-3.4 MP cut from real photos (`../shared/photos/extra`, 4:2:0 like
camera JPEGs, by default), of which every 20th (5 %) is colorized by one of three families that
need no torch: the shipped colorizer (`imgcheck.colorize`), a sepia/duotone tint, and the true
chroma band-limited at 1/8 and stretched back (what a colorizer working at a small size leaves).

Measured in interleaved rounds, in this process, on the same files:
  - scan with the cascade (the default) and with `cascade=False` (images/s);
  - `--before DIR`: the same scan with another model folder as it ships (its own cascade, if
    it has one), e.g. the previous detector;
  - plain full-resolution decode of every file (`Image.open(...).convert("RGB")`), the
    machine's decode rate, for the scan / decode ratio;
and, from the rows: the share of images the cascade stopped early, the tiles scored, and
whether any verdict differs between cascade and no cascade (it must not on detections).
`--where` adds one more cascade scan that splits the CPU per image into decode + tiling and
the detector call.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus

EXTRA = _corpus.REPO.parent / "shared" / "photos" / "extra"


def _tint(img: Image.Image) -> Image.Image:
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    dark, light = np.array([40, 28, 20], np.float32), np.array([250, 236, 205], np.float32)
    rgb = dark + grey[..., None] * (light - dark)
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def _lowres_chroma(img: Image.Image) -> Image.Image:
    y, cb, cr = img.convert("YCbCr").split()
    small = (max(1, img.width // 8), max(1, img.height // 8))
    cb, cr = (c.resize(small, Image.Resampling.BOX).resize(img.size) for c in (cb, cr))
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def _ours(img: Image.Image) -> Image.Image:
    import imgcheck

    return imgcheck.colorize(img.convert("L"))  # type: ignore[attr-defined]


FAMILIES = {"ours": _ours, "tint": _tint, "lowres_chroma": _lowres_chroma}


def make_mix(args: argparse.Namespace) -> tuple[list[Path], dict[str, str]]:
    """The corpus, with every 20th image colorized in place (cached beside it)."""
    corpus = _corpus.make_corpus(
        args.work, args.n, photos=args.photos, min_mp=0.3, max_mp=3.4, quality=90
    )
    folder = corpus.folder.parent / "mix"
    folder.mkdir(exist_ok=True)
    truth: dict[str, str] = {}
    paths = []
    names = list(FAMILIES)
    for i, src in enumerate(corpus.paths):
        family = names[(i // 20) % len(names)] if i % 20 == 19 else "real"
        dst = folder / f"{family}_{src.name}"
        if not dst.exists():
            img = Image.open(src).convert("RGB")
            out = img if family == "real" else FAMILIES[family](img)
            out.save(dst, "JPEG", quality=90)
        truth[str(dst)] = family
        paths.append(dst)
    return paths, truth


def scan_once(scanner: Any, paths: list[Path]) -> tuple[float, list[Any]]:
    from imgcheck.inputs import InputItem

    start = time.perf_counter()
    rows = list(scanner.run(InputItem(str(p)) for p in paths))
    return time.perf_counter() - start, rows


def decode_once(paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.convert("RGB")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    ap.add_argument("--before", type=Path, help="another model folder to time beside it")
    ap.add_argument(
        "--threads", type=int, default=0, metavar="N",
        help="also time the cascade scan with one N-thread ONNX Runtime run per model call "
        "(the scan engine before its per-core lanes)",
    )  # fmt: skip
    ap.add_argument("--photos", type=Path, default=EXTRA)
    ap.add_argument("--work", type=Path, default=_corpus.DEFAULT_WORK)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--where", action="store_true", help="then one more scan: CPU per image, decode vs model"
    )
    args = ap.parse_args(argv)
    if not args.photos.is_dir():
        ap.error(f"--photos {args.photos}: not a folder")
    from imgcheck.scanning import Scanner

    paths, truth = make_mix(args)
    _corpus.warm_cache(paths)
    sides: dict[str, Any] = {
        "cascade": Scanner(args.model, cascade=True),
        "no cascade": Scanner(args.model, cascade=False),
    }
    if sides["cascade"].cascade is None:
        print("the model ships no cascade (or it is off):", sides["cascade"].warnings)
        return 2
    if args.before is not None:
        sides["before"] = Scanner(args.before)  # as it ships: its own cascade, if it has one
    one = f"{args.threads}-thread run" if args.threads else ""
    if one:
        sides[one] = Scanner(args.model, cascade=True, threads=args.threads)
    times: dict[str, list[float]] = {k: [] for k in [*sides, "decode"]}
    rows: dict[str, list[Any]] = {}
    for _ in range(args.rounds):
        for name, scanner in sides.items():
            seconds, got = scan_once(scanner, paths)
            times[name].append(seconds)
            rows[name] = got
        times["decode"].append(decode_once(paths))
    rate = {k: len(paths) / float(np.median(v)) for k, v in times.items()}
    on, off = rows["cascade"], rows["no cascade"]
    stopped = sum(r.stage is not None and r.stage.value == "screen" for r in on)
    changed = [a.path for a, b in zip(on, off, strict=True) if a.verdict != b.verdict]
    exact = max(
        abs(a.score - b.score)
        for a, b in zip(on, off, strict=True)
        if a.stage is not None and a.stage.value == "detector"
    )
    flagged = {
        fam: sum(1 for r in on if truth[r.path] == fam and r.flagged)
        for fam in ["real", *FAMILIES]
    }
    counts = {fam: sum(1 for f in truth.values() if f == fam) for fam in ["real", *FAMILIES]}
    out = {
        "machine": _corpus.machine(),
        "n": len(paths),
        "images_per_s": rate,
        "cascade_vs_no_cascade": rate["cascade"] / rate["no cascade"],
        "scan_vs_decode": rate["cascade"] / rate["decode"],
        "stopped_early": stopped / len(paths),
        "verdicts_changed": changed,
        "max_score_diff_detector_rows": exact,
        "flagged": flagged,
        "counts": counts,
        "stages": [list(s) for s in sides["cascade"].cascade.stages],
    }
    if "before" in rate:
        out["cascade_vs_before"] = rate["cascade"] / rate["before"]
        out["no_cascade_vs_before"] = rate["no cascade"] / rate["before"]
    if one:
        out["lanes"] = sides["cascade"].lanes
        out["cascade_vs_one_run"] = rate["cascade"] / rate[one]
        out["lanes_max_score_diff"] = max(
            abs(a.score - b.score)
            for a, b in zip(rows["cascade"], rows[one], strict=True)
            if a.score is not None and b.score is not None
        )
    print(f"machine: {out['machine']}")
    print(f"corpus: {len(paths)} JPEGs 0.3-3.4 MP from {args.photos}, 5% colorized ({counts})")
    for k, v in rate.items():
        print(f"  {k:12s} {v:7.1f} images/s  (median of {args.rounds} rounds)")
    print(f"cascade / no cascade   {out['cascade_vs_no_cascade']:.2f}x")
    if "before" in rate:
        print(f"cascade / before       {out['cascade_vs_before']:.2f}x")
        print(f"no cascade / before    {out['no_cascade_vs_before']:.2f}x")
    if one:
        print(
            f"cascade / {one}  {out['cascade_vs_one_run']:.2f}x  ({out['lanes']} lanes of 1 "
            f"thread; max |score diff| {out['lanes_max_score_diff']:.1e})"
        )
    print(f"scan / full decode     {out['scan_vs_decode']:.3f}  (goal >= 0.1)")
    print(f"stopped early          {out['stopped_early']:.1%} of images")
    print(f"verdicts changed       {len(changed)}; detector rows max |score diff| {exact:.2e}")
    print(f"flagged per family     {flagged}")
    if args.where:
        out["where"] = where_time_goes(Scanner(args.model, cascade=True), paths)
        w = out["where"]
        print(
            f"where the time goes  {w['images_per_s']:.1f} images/s, {w['cpu_ms']:.1f} ms CPU per "
            f"image: decode + tiles {w['prepare_ms']:.1f} ms, detector call {w['model_ms']:.1f} ms "
            f"on the calling thread, {w['other_ms']:.1f} ms elsewhere (the other lanes' runs)"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    return 0


def where_time_goes(scanner: Any, paths: list[Path]) -> dict[str, float]:
    """CPU per image of one cascade scan: thread CPU inside `prepare` (decode, view, tiles) and
    `_run_model` (the session call, calling thread only), and the process total."""
    spent = {"prepare": 0.0, "model": 0.0}
    lock = threading.Lock()

    def timed(name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[name] += time.thread_time() - start

        return run

    scanner.prepare = timed("prepare", scanner.prepare)
    scanner._run_model = timed("model", scanner._run_model)
    scan_once(scanner, paths)  # warm-up: sessions, caches
    spent.update(prepare=0.0, model=0.0)
    wall, cpu = time.perf_counter(), time.process_time()
    scan_once(scanner, paths)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(paths)
    per = {k: v / n * 1000 for k, v in spent.items()}
    return {
        "images_per_s": n / wall,
        "cpu_ms": cpu / n * 1000,
        "prepare_ms": per["prepare"],
        "model_ms": per["model"],
        "other_ms": cpu / n * 1000 - per["prepare"] - per["model"],
    }


if __name__ == "__main__":
    sys.exit(main())
