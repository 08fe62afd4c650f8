"""How close `imgcheck scan` gets to the machine's limit, measured in one run.

    python benchmarks/bench_scan.py [--n 20] [--model DIR] [--synthetic | --photos DIR]

Measures, on a corpus of N JPEGs of mixed sizes (0.3-4 MP by default):
  (a) decode-only: the scan worker's own `Scanner.prepare` (decode with JPEG draft, grey check,
      resize, view crops) in a pool of the scan's decode-thread count, no model;
  (b) model-only: `session.run` at the scan's batch size on the crops of (a);
  (c) `imgcheck scan` end-to-end: the CLI in a subprocess, CSV written to a file;
  (d) naive: one image at a time, full-resolution decode, one `session.run` per image, no
      parallel decoding (same session);
  (e) the scan's peak RSS on N and on factor*N inputs (hard links to the same files).
(a), (b), (d) and (c) on N images are measured in `--rounds` interleaved rounds and pooled:
on a shared machine the load comes and goes, and interleaving lets it hit every side alike.
(c) uses the CLI's own timer (first path to last row); interpreter start and model load are
printed apart. The factor*N run gives (e) and a big-folder scan rate; its "steady" line is
(factor*N - N) images over the difference of the wall times, so start-up cancels out.

Ratios (goals): scan / bound >= 0.85 with bound = 1 / (1/a + 1/b) (decode and inference share
the same cores); scan / naive >= 3; RSS(factor*N) / RSS(N) <= 1.1; `imgcheck --help` < 0.3 s.

Also printed when they apply: the int8 variant's model-only speed next to fp32 (when the
manifest ships `detector_int8`), and on CUDA, `session.run` vs IOBinding model-only.
`--ablate ROUNDS` runs only an in-process A/B of the scan's per-core lanes against one run of
ONNX Runtime's own threads per call, with their spinning off (the default of
`create_session`) vs on, over the same corpus.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus

GOALS = {"scan/bound": 0.85, "scan/naive": 3.0, "rss ratio": 1.1, "help s": 0.3}


def decode_only(scanner: Any, paths: list[Path]) -> tuple[float, list[Any]]:
    """(a) seconds for the scan's own prepare() over `paths` in its thread count; the results."""
    from imgcheck.inputs import InputItem

    items = [InputItem(str(p)) for p in paths]
    start = time.perf_counter()
    with ThreadPoolExecutor(scanner.workers, thread_name_prefix="bench-decode") as pool:
        prepared = list(pool.map(scanner.prepare, items))
    seconds = time.perf_counter() - start
    bad = [p.result.error for p in prepared if p.result.error]
    if bad:
        raise RuntimeError(f"decode errors in the corpus: {bad[:3]}")
    return seconds, prepared


def _batches(prepared: list[Any], batch_size: int) -> list[np.ndarray]:
    crops = [p.crops for p in prepared if p.crops is not None]
    return [np.concatenate(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]


def model_only(scanner: Any, prepared: list[Any], batch_size: int) -> float:
    """(b) seconds for the detector on already-decoded crops, `batch_size` images per call,
    through the scan's own model call (`Scanner._run_model`: on CPU, one run per core)."""
    batches = _batches(prepared, batch_size)
    scanner._run_model(batches[0])  # warm-up: first-run allocations
    start = time.perf_counter()
    for batch in batches:
        scanner._run_model(batch)
    return time.perf_counter() - start


def model_only_iobinding(scanner: Any, prepared: list[Any], batch_size: int) -> float:
    """CUDA only: like model_only, through IOBinding (input copied once, outputs to CPU)."""
    batches = _batches(prepared, batch_size)
    session = scanner.session

    def once(batch: np.ndarray) -> None:
        binding = session.io_binding()
        binding.bind_cpu_input(scanner._input, batch)
        for out in scanner._outputs:
            binding.bind_output(out, "cpu")
        session.run_with_iobinding(binding)
        binding.copy_outputs_to_cpu()

    once(batches[0])
    start = time.perf_counter()
    for batch in batches:
        once(batch)
    return time.perf_counter() - start


def naive(scanner: Any, paths: list[Path]) -> float:
    """(d) one image at a time: full decode, view crops, one session.run each, on a session
    with ONNX Runtime's default threads (what a script of one's own would open)."""
    from PIL import Image, ImageOps

    from imgcheck.session import Device, create_session
    from imgcheck.view import make_views

    session = create_session(scanner.info.path, Device(scanner.provider))
    outputs, name = scanner._outputs, scanner._input
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
        crops, _ = make_views(rgb, scanner.spec)
        session.run(outputs, {name: crops})
    return time.perf_counter() - start


_SUMMARY = re.compile(r"imgcheck: (\d+) images in ([\d.]+) s \(([\d.]+) images/s")


def cli_scan(folder: Path, model: Path, csv_path: Path, args: argparse.Namespace) -> dict:
    """(c)/(e) `imgcheck scan FOLDER -o out.csv` in a subprocess: wall, scan rate, peak RSS."""
    cmd = [*_corpus.imgcheck_cmd(), "scan", str(folder), "-o", str(csv_path)]
    cmd += ["--model", str(model), "--device", args.device, "--batch-size", str(args.batch_size)]
    cmd += ["--quiet", "--exit-zero"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    m = _corpus.run_measured(cmd)
    if m.returncode != 0:
        raise RuntimeError(f"imgcheck scan exited {m.returncode}: {m.stderr.strip()[-500:]}")
    with open(csv_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    errors = [r for r in rows if r["status"] != "ok"]
    if errors:
        raise RuntimeError(f"scan rows not ok: {errors[:3]}")
    found = _SUMMARY.search(m.stderr)
    if not found:
        raise RuntimeError(f"no summary line from imgcheck scan: {m.stderr.strip()[-300:]}")
    images, rate = int(found.group(1)), float(found.group(3))
    inner = images / rate if rate > 0 else float(found.group(2))
    return {
        "images": len(rows),
        "wall_s": m.seconds,
        "scan_s": inner,  # the CLI's own timer: first path to last row
        "rate": rate,
        "startup_s": m.seconds - inner,
        "rss": m.max_rss,
    }


def _extra_rates(
    scanner: Any, model: Path, prepared: list[Any], args: argparse.Namespace
) -> dict[str, float]:
    """int8 vs fp32 model-only (when the manifest ships int8); IOBinding vs run on CUDA."""
    from imgcheck.scanning import Scanner

    n, extra = len(prepared), {}
    manifest = json.loads((model / "manifest.json").read_text()) if model.is_dir() else {}
    if not args.variant and "detector_int8" in manifest.get("variants", {}):
        q = Scanner(model, "cpu", batch_size=args.batch_size, variant="int8")
        extra["int8 model-only"] = n / model_only(q, prepared, args.batch_size)
        extra["fp32 model-only"] = n / model_only(scanner, prepared, args.batch_size)
    if scanner.provider == "cuda":
        extra["cuda iobinding"] = n / model_only_iobinding(scanner, prepared, args.batch_size)
        extra["cuda session.run"] = n / model_only(scanner, prepared, args.batch_size)
    return extra


def ablate(scanner: Any, model: Path, paths: list[Path], rounds: int, device: str) -> None:
    """In-process Scanner.run over the corpus, rounds interleaved: the scan's default
    (single-threaded runs of at most RUN_TILES crops, one lane per core) against one run of
    ONNX Runtime's own threads per call, with their idle threads' spinning off (the default
    before the lanes) and on."""
    from imgcheck.inputs import InputItem
    from imgcheck.session import Device, create_session

    # (session, lanes, crops per run): "one run" takes the whole call on ORT's own threads.
    engines = {
        f"{scanner.lanes} lanes (default)": (scanner.session, scanner.lanes, scanner._run_tiles),
        "one run, spinning off": (create_session(scanner.info.path, Device(device)), 1, None),
        "one run, spinning on": (
            create_session(scanner.info.path, Device(device), spin=True), 1, None
        ),
    }
    rates: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(rounds):
        for name, (session, lanes, run_tiles) in engines.items():
            scanner.session, scanner.lanes, scanner._run_tiles = session, lanes, run_tiles
            start = time.perf_counter()
            count = sum(1 for _ in scanner.run(InputItem(str(p)) for p in paths))
            rates[name].append(count / (time.perf_counter() - start))
    print(f"ablation: in-process scan of {len(paths)} images, {rounds} interleaved rounds")
    base = rates["one run, spinning off"]
    for name, values in rates.items():
        wins = sum(v > b for v, b in zip(values, base, strict=True))
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"  {name:<24}{np.median(values):7.2f} images/s median   ({runs})"
            + (f"   faster in {wins}/{rounds}" if values is not base else "")
        )


def _ratio_line(name: str, value: float, goal: float, higher: bool = True) -> str:
    ok = value >= goal if higher else value <= goal
    sign = ">=" if higher else "<="
    return f"  {name:<26}{value:8.2f}   goal {sign} {goal:<5} {'MET' if ok else 'MISSED'}"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=16, help="corpus size N (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--rss-factor", type=int, default=10, help="the big run has factor*N")
    _corpus.add_corpus_args(parser)
    parser.add_argument("--batch-size", type=int, help="images per run (default: scan's)")
    parser.add_argument("--workers", type=int, default=0, help="decode threads (0: scan's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--variant",
        help="measure a manifest variant (e.g. int8) instead of detector.onnx; the CLI gets "
        "the variant's .onnx file as --model",
    )
    parser.add_argument(
        "--ablate",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only an in-process A/B: ORT spinning off (default) vs on, ROUNDS interleaved",
    )
    parser.add_argument("--work", type=Path, default=_corpus.DEFAULT_WORK, help="cache folder")
    parser.add_argument("--help-repeat", type=int, default=5, help="--help timings (best of)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return _corpus.parse_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from imgcheck.scanning import DEFAULT_BATCH_SIZE, Scanner

    args.batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    t_start = time.perf_counter()
    model, model_source, corpus = _corpus.model_and_corpus(args)
    n = len(corpus.paths)
    scanner = Scanner(
        model,
        args.device,
        batch_size=args.batch_size,
        workers=args.workers or None,
        variant=args.variant,
    )
    cli_model = scanner.info.path if args.variant else model
    mps = [w * h / 1e6 for w, h in corpus.sizes]
    print(f"machine:  {_corpus.machine()}")
    print(f"model:    {model_source}" + (f", variant {args.variant}" if args.variant else ""))
    print(
        f"detector: {scanner.info.path.name} on {scanner.provider}, view {scanner.spec.to_dict()}"
    )
    print(
        f"corpus:   {n} JPEGs, {min(mps):.2f}-{max(mps):.2f} MP ({corpus.megapixels:.1f} MP in "
        f"all), {corpus.source}; batch {args.batch_size}, {scanner.workers} decode threads"
    )
    if args.ablate:
        ablate(scanner, model, corpus.paths, args.ablate, args.device)
        return 0
    big = _corpus.linked_copies(corpus, args.rss_factor, args.work)

    # Rounds of (a), (b), (d), (c) on N images: every rate is sampled at the same moments, so
    # the load of a shared machine (which comes and goes) hits all sides alike; then (e).
    t: dict[str, list[float]] = {"a": [], "b": [], "d": []}
    smalls: list[dict] = []
    extra: dict[str, float] = {}
    csv_path = args.work / "bench-scan.csv"
    for r in range(args.rounds):
        seconds, prepared = decode_only(scanner, corpus.paths)
        t["a"].append(seconds)
        t["b"].append(model_only(scanner, prepared, args.batch_size))
        if r == 0:
            extra = _extra_rates(scanner, model, prepared, args)
        del prepared
        t["d"].append(naive(scanner, corpus.paths))
        smalls.append(cli_scan(corpus.folder, cli_model, csv_path, args))
    large = cli_scan(big, cli_model, csv_path, args)
    help_s = _corpus.help_seconds(args.help_repeat)

    def per_round(key: str) -> list[float]:
        return [n / x for x in t[key]]

    rounds_rate = {
        "decode": per_round("a"),
        "model": per_round("b"),
        "naive": per_round("d"),
        "scan": [s["rate"] for s in smalls],
    }
    rate = {
        "decode": len(t["a"]) * n / sum(t["a"]),
        "model": len(t["b"]) * n / sum(t["b"]),
        "naive": len(t["d"]) * n / sum(t["d"]),
        "scan": sum(s["images"] for s in smalls) / sum(s["scan_s"] for s in smalls),
        "scan_large": large["rate"],
    }
    rate["bound"] = 1 / (1 / rate["decode"] + 1 / rate["model"])
    bounds = [
        1 / (1 / a + 1 / b)
        for a, b in zip(rounds_rate["decode"], rounds_rate["model"], strict=True)
    ]
    small_wall = sum(s["wall_s"] for s in smalls) / len(smalls)
    small_start = sum(s["startup_s"] for s in smalls) / len(smalls)
    steady = (large["images"] - n) / max(1e-9, large["wall_s"] - small_wall)
    ratios = {
        "scan/bound": rate["scan"] / rate["bound"],
        "scan/naive": rate["scan"] / rate["naive"],
        "rss ratio": large["rss"] / smalls[0]["rss"],
        "help s": help_s,
    }
    per_round_ratios = {
        "scan/bound": [c / b for c, b in zip(rounds_rate["scan"], bounds, strict=True)],
        "scan/naive": [
            c / d for c, d in zip(rounds_rate["scan"], rounds_rate["naive"], strict=True)
        ],
    }
    mp = corpus.megapixels / n
    nb = large["images"]

    def runs(values: list[float]) -> str:
        return "rounds " + ", ".join(f"{v:.2f}" for v in values)

    print(f"\nthroughput (images/s; MP/s of source images); {args.rounds} interleaved rounds")
    print(
        f"  (a) decode only            {rate['decode']:8.2f} {rate['decode'] * mp:7.1f} MP/s"
        f"   ({runs(rounds_rate['decode'])})"
    )
    print(
        f"  (b) model only, batch {args.batch_size:<4} {rate['model']:8.2f}"
        f" {rate['model'] * mp:7.1f} MP/s   ({runs(rounds_rate['model'])})"
    )
    print(f"      bound 1/(1/a + 1/b)    {rate['bound']:8.2f}              ({runs(bounds)})")
    print(
        f"  (c) imgcheck scan          {rate['scan']:8.2f} {rate['scan'] * mp:7.1f} MP/s"
        f"   ({runs(rounds_rate['scan'])}; the CLI's timer, {n} images each)"
    )
    print(
        f"      scan, {nb} images       {rate['scan_large']:8.2f}"
        f" {rate['scan_large'] * mp:7.1f} MP/s   (one run after the rounds: "
        f"{large['scan_s']:.1f} s by the CLI's timer)"
    )
    print(
        f"      scan wall, {n} images   {n / small_wall:8.2f}              "
        f"({small_wall:.2f} s incl. {small_start:.2f} s interpreter start + model load)"
    )
    print(
        f"      scan wall, steady      {steady:8.2f}              "
        f"(({nb} - {n}) images / wall-time difference)"
    )
    print(
        f"  (d) naive loop             {rate['naive']:8.2f} {rate['naive'] * mp:7.1f} MP/s"
        f"   ({runs(rounds_rate['naive'])})"
    )
    for name, value in extra.items():
        print(f"      {name:<22}{value:8.2f}              (round 1, beside (b))")
    print("memory (peak RSS of the scan process)")
    print(
        f"  (e) {n} images {smalls[0]['rss'] / 2**20:8.1f} MiB, {nb} images "
        f"{large['rss'] / 2**20:8.1f} MiB"
    )
    if n < args.batch_size:
        print(f"      note: N < batch size {args.batch_size}: the N run never holds a full batch,")
        print("      so its RSS is not comparable (use N >= batch size for the ratio)")
    print(f"startup: imgcheck --help {help_s:.3f} s (best of {args.help_repeat})")
    print("ratios (measured in this run)")
    for key, label in (("scan/bound", "scan / bound"), ("scan/naive", "scan / naive")):
        line = _ratio_line(label, ratios[key], GOALS[key])
        print(f"{line}   ({runs(per_round_ratios[key])})")
    rss_name = f"RSS({args.rss_factor}N) / RSS(N)"
    print(_ratio_line(rss_name, ratios["rss ratio"], GOALS["rss ratio"], higher=False))
    print(_ratio_line("imgcheck --help (s)", help_s, GOALS["help s"], higher=False))
    total = time.perf_counter() - t_start
    print(f"benchmark wall time {total:.0f} s")
    if args.json:
        report = {
            "machine": _corpus.machine(),
            "model": model_source,
            "variant": args.variant,
            "n": n,
            "batch_size": args.batch_size,
            "workers": scanner.workers,
            "rates": rate,
            "round_rates": rounds_rate,
            "round_ratios": per_round_ratios,
            "extra_rates": extra,
            "scan_small": smalls,
            "scan_large": large,
            "steady_wall_rate": steady,
            "ratios": ratios,
            "seconds": total,
        }
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
