"""Shared helpers for the scan and colorize benchmarks: test corpus, model, measured subprocesses.

- `make_corpus`: N JPEGs of mixed sizes (log-uniform megapixels, usual aspect ratios), cut from
  real photos (upscaled and cropped) or generated photo-like when no photo folder is given.
  Light sensor-like noise is added to every image: an upscaled photo is smoother than a real
  camera frame and would decode unrealistically fast. Cached under the work folder.
- `ensure_model`: `--model DIR`, else the shipped models (`detector/models/manifest.json`),
  else default-size networks from random init (same compute cost as trained ones) exported
  once into the work folder. Exporting needs torch and runs in a subprocess
  (`python benchmarks/_corpus.py make-model OUT`), so the benchmark process itself never
  imports torch.
- `add_corpus_args`, `parse_args`, `model_and_corpus`: the options both benchmarks share and
  the model + cached corpus they name.
- `run_measured`: one subprocess with its wall time and its own peak RSS (`os.wait4`).
- `help_seconds`: best-of-k wall time of `imgcheck --help` in fresh interpreters.

The work folder defaults to `bench-out/` at the repository root (ignored by git).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORK = REPO / "bench-out"
DEFAULT_PHOTOS = REPO.parent / "shared" / "photos" / "train"
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3)


# -- corpus -------------------------------------------------------------------------------------


def corpus_sizes(n: int, min_mp: float, max_mp: float, seed: int = 0) -> list[tuple[int, int]]:
    """`n` (width, height): megapixels log-uniform in [min_mp, max_mp], usual aspect ratios."""
    rng = np.random.default_rng(seed)
    sizes = []
    for _ in range(n):
        mp = math.exp(rng.uniform(math.log(min_mp), math.log(max_mp)))
        aspect = ASPECTS[int(rng.integers(len(ASPECTS)))]
        w = max(32, round(math.sqrt(mp * 1e6 * aspect)))
        h = max(32, round(mp * 1e6 / w))
        sizes.append((w, h))
    return sizes


def synthetic_photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like RGB image: smooth colour field, shaded shapes, edges (no noise yet)."""
    sw, sh = max(8, width // 4), max(8, height // 4)  # drawn small, upscaled: smooth and fast
    cells = int(rng.integers(2, 7))
    field = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    img = Image.fromarray(field).resize((sw, sh), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x0, x1 = sorted(rng.integers(-sw // 4, sw + sw // 4, size=2).tolist())
        y0, y1 = sorted(rng.integers(-sh // 4, sh + sh // 4, size=2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    return img.resize((width, height), Image.Resampling.BICUBIC)


def _list_photos(folder: Path) -> list[Path]:
    from imgcheck.inputs import iter_inputs

    return sorted(Path(i.path) for i in iter_inputs([str(folder)]) if i.error is None)


def _from_photo(path: Path, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Scale `path` to cover width x height (upscaling if needed), then crop at a random spot."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        cover = (max(width, math.ceil(im.width * scale)), max(height, math.ceil(im.height * scale)))
        im = im.resize(cover, Image.Resampling.BICUBIC)
    left = int(rng.integers(0, cover[0] - width + 1))
    top = int(rng.integers(0, cover[1] - height + 1))
    return im.crop((left, top, left + width, top + height))


def _add_noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def _is_colour(img: Image.Image) -> bool:
    from imgcheck.decode import is_grey_rgb

    return not is_grey_rgb(img)


@dataclass
class Corpus:
    folder: Path
    paths: list[Path]
    sizes: list[tuple[int, int]]
    source: str

    @property
    def megapixels(self) -> float:
        return sum(w * h for w, h in self.sizes) / 1e6


def make_corpus(
    work: Path,
    n: int,
    *,
    photos: Path | None = None,
    min_mp: float = 0.3,
    max_mp: float = 4.0,
    seed: int = 0,
    quality: int = 90,
    noise: float = 3.0,
    grey: bool = False,
) -> Corpus:
    """N colour JPEGs (or grey ones with `grey=True`, for the colorizer), cached by parameters."""
    sources = _list_photos(photos) if photos is not None else []
    source = f"{len(sources)} photos from {photos} (scaled/cropped)" if sources else "synthetic"
    params = {
        "n": n,
        "min_mp": min_mp,
        "max_mp": max_mp,
        "seed": seed,
        "quality": quality,
        "noise": noise,
        "grey": grey,
        "source": source,
        "version": 1,
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(work) / f"corpus-{'grey-' if grey else ''}{n}-{key}"
    stamp = folder / "corpus.json"
    sizes = corpus_sizes(n, min_mp, max_mp, seed)
    names = [f"img_{i:04d}_{w}x{h}.jpg" for i, (w, h) in enumerate(sizes)]
    if stamp.is_file() and all((folder / "images" / name).is_file() for name in names):
        return Corpus(folder / "images", [folder / "images" / m for m in names], sizes, source)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed + 1)
    pick = 0
    for name, (w, h) in zip(names, sizes, strict=True):
        img = None
        for _ in range(len(sources)):  # skip grey source photos: the detector ignores them
            candidate = _from_photo(sources[pick % len(sources)], rng, w, h)
            pick += 1
            if grey or _is_colour(candidate):
                img = candidate
                break
        if img is None:
            img = synthetic_photo(rng, w, h)
        if noise > 0:
            img = _add_noise(img, rng, noise)
        if grey:
            img = img.convert("L")
        img.save(folder / "images" / name, "JPEG", quality=quality)
    stamp.write_text(json.dumps(params, indent=1), encoding="utf-8")
    return Corpus(folder / "images", [folder / "images" / m for m in names], sizes, source)


def linked_copies(corpus: Corpus, factor: int, work: Path) -> Path:
    """A folder with `factor` hard links (or symlinks) to each corpus file: factor*N inputs, no disk."""
    folder = Path(work) / f"{corpus.folder.parent.name}-x{factor}"
    expected = [folder / f"copy_{k:03d}" / p.name for k in range(factor) for p in corpus.paths]
    if all(p.exists() for p in expected):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for k in range(factor):
        sub = folder / f"copy_{k:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        for src in corpus.paths:
            dst = sub / src.name
            try:
                os.link(src, dst)
            except OSError:
                try:
                    os.symlink(src.resolve(), dst)
                except OSError:
                    shutil.copyfile(src, dst)
    return folder


EXTRA = REPO.parent / "shared" / "photos" / "extra"


def add_photo_args(parser: argparse.ArgumentParser, *, n: int = 200, rounds: int = 3) -> None:
    """--n, --rounds, --model, --photos (default: photos/extra), --work: the options of the
    benchmarks that cut their corpus from real photos (`photo_corpus`)."""
    parser.add_argument("--n", type=int, default=n, help="corpus images (real photos)")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    parser.add_argument("--photos", type=Path, default=EXTRA)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)


def photo_corpus(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Corpus:
    """The cached corpus `add_photo_args` names: real JPEGs of 0.3-3.4 MP, q90."""
    if not args.photos.is_dir():
        parser.error(f"--photos {args.photos}: not a folder")
    return make_corpus(args.work, args.n, photos=args.photos, min_mp=0.3, max_mp=3.4, quality=90)


def warm_cache(paths: list[Path]) -> None:
    """Read every file once, so every measurement sees the page cache in the same state."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass


# -- the command line both benchmarks share ------------------------------------------------------


def add_corpus_args(parser: argparse.ArgumentParser) -> None:
    """--model, --synthetic, --photos, --min-mp, --max-mp: what `model_and_corpus` reads."""
    parser.add_argument("--model", type=Path, help="model folder (default: shipped, else random)")
    parser.add_argument("--synthetic", action="store_true", help="generated images, no photos")
    parser.add_argument("--photos", type=Path, help=f"photos (default {DEFAULT_PHOTOS})")
    parser.add_argument("--min-mp", type=float, default=0.3, help="smallest image, megapixels")
    parser.add_argument("--max-mp", type=float, default=4.0, help="largest image, megapixels")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, refusing a --photos that is not a folder."""
    args = parser.parse_args(argv)
    if args.photos is not None and not args.photos.is_dir():
        parser.error(f"--photos {args.photos}: not a folder")
    return args


def model_and_corpus(args: argparse.Namespace, *, grey: bool = False) -> tuple[Path, str, Corpus]:
    """(model folder, how it was found, corpus) from the `add_corpus_args` options and --work /
    --n; the corpus files are read once (`warm_cache`) before this returns."""
    args.work.mkdir(parents=True, exist_ok=True)
    model, model_source = ensure_model(args.model, args.work)
    photos = None if args.synthetic else (args.photos or DEFAULT_PHOTOS)
    corpus = make_corpus(
        args.work,
        args.n,
        photos=photos if photos is not None and photos.is_dir() else None,
        min_mp=args.min_mp,
        max_mp=args.max_mp,
        grey=grey,
    )
    warm_cache(corpus.paths)
    return model, model_source, corpus


# -- model --------------------------------------------------------------------------------------


def ensure_model(model: Path | None, work: Path, *, int8: bool = True) -> tuple[Path, str]:
    """(model folder, how it was found); see the module doc for the order."""
    if model is not None:
        return Path(model), f"--model {model}"
    from imgcheck.models import DEFAULT_DIR, MANIFEST

    if (DEFAULT_DIR / MANIFEST).is_file():
        return DEFAULT_DIR, f"shipped models ({DEFAULT_DIR})"
    out = Path(work) / "model-random-default"
    what = "default-size networks from random init (compute cost of the trained ones)"
    if not (out / MANIFEST).is_file():
        print(f"exporting {what} into {out} (once; needs torch) ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "make-model", str(out)]
        if not int8:
            cmd.append("--no-int8")
        subprocess.run(cmd, check=True)
    note = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("benchmark_note", "")
    return out, f"{what}, {out}" + (f" [{note}]" if note else "")


def _make_model(out: Path, int8: bool) -> None:
    """Random-init default ColorizerConfig/DiscriminatorConfig/ViewSpec -> exported model folder."""
    from dataclasses import asdict

    import torch

    from imgcheck import __version__
    from imgcheck.export.errors import ExportError
    from imgcheck.trainer.nets import (
        ColorizerConfig,
        DiscriminatorConfig,
        PatchDiscriminator,
        UNetColorizer,
    )
    from imgcheck.view import ViewSpec

    torch.manual_seed(0)
    g_cfg, d_cfg = ColorizerConfig(), DiscriminatorConfig()
    g = UNetColorizer(g_cfg)
    with tempfile.TemporaryDirectory(prefix="imgcheck-bench-run-") as tmp:
        run = Path(tmp) / "run"
        (run / "checkpoints").mkdir(parents=True)
        final = {
            "format": 1,
            "generator": g.state_dict(),
            "generator_config": asdict(g_cfg),
            "generator_l1": g.state_dict(),
            "detector": PatchDiscriminator(d_cfg).state_dict(),
            "detector_config": asdict(d_cfg),
            "work_size": 256,
            "threshold": 0.5,
            "threshold_rule": "fixed 0.5 (benchmark: random-init networks)",
            "view": ViewSpec().to_dict(),
            "data_digest": "0" * 64,
            "metrics": {},
            "version": __version__,
        }
        torch.save(final, run / "checkpoints" / "final.pt")
        split = {"data_digest": "0" * 64, "train": [], "val": [], "skipped": {}}
        (run / "split.json").write_text(json.dumps(split), encoding="utf-8")
        (run / "config.json").write_text(json.dumps({"version": __version__}), encoding="utf-8")
        note = ""
        try:
            from imgcheck.export.api import export_run

            export_run(run, out, overwrite=True, variants=False)
        except ExportError as exc:
            # Random weights can miss a parity bound the trained ones meet; the speed is the
            # same, so export without the check rather than not benchmark at all.
            note = f"exported without the PyTorch parity check: {exc}"
            print(f"note: {note}", file=sys.stderr)
            _export_unverified(run, out)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if note:
        manifest["benchmark_note"] = note[:300]
    if int8:
        try:
            _add_int8(out, manifest)
        except Exception as exc:  # the export engineer's quantizer may not be there yet
            print(f"note: no int8 variant built: {type(exc).__name__}: {exc}", file=sys.stderr)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _export_unverified(run: Path, out: Path) -> None:
    from imgcheck.export import manifest as mf
    from imgcheck.export.checkpoint import load_run
    from imgcheck.export.onnx_export import export_colorizer, export_detector, io_spec, save_model

    trained = load_run(run)
    out.mkdir(parents=True, exist_ok=True)
    colorizer = export_colorizer(trained.generator, trained.work_size)
    save_model(colorizer, out / "colorizer.onnx")
    view = trained.view.to_dict()
    detector = export_detector(trained.detector, trained.threshold, view, trained.view.crop)
    save_model(detector, out / "detector.onnx")
    manifest = {
        "imgcheck_manifest": 1,
        "version": "0.1.0",
        "created": mf.now(),
        "opset": 18,
        "training_data_digest": "0" * 64,
        "metrics": {},
        "detector": mf.file_entry(
            out, "detector.onnx", **io_spec(detector), threshold=trained.threshold, view=view
        ),
        "colorizer": mf.file_entry(
            out, "colorizer.onnx", **io_spec(colorizer), work_size=trained.work_size
        ),
        "variants": {},
    }
    mf.write(out, manifest)


def _add_int8(out: Path, manifest: dict) -> None:
    """int8 detector (the export engineer's quantizer), calibrated on synthetic photo crops."""
    from imgcheck.export.quantize import to_int8
    from imgcheck.export.variants import calibration_batches
    from imgcheck.models import sha256_file
    from imgcheck.view import ViewSpec, make_views

    spec = ViewSpec.from_dict(manifest["detector"]["view"])
    rng = np.random.default_rng(7)
    crops = np.concatenate(
        [
            make_views(_add_noise(synthetic_photo(rng, 1024, 768), rng, 3.0), spec)[0]
            for _ in range(16)
        ]
    )
    to_int8(out / "detector.onnx", out / "detector.int8.onnx", calibration_batches(crops))
    entry = {k: v for k, v in manifest["detector"].items() if k not in ("parity",)}
    entry.update(
        file="detector.int8.onnx",
        sha256=sha256_file(out / "detector.int8.onnx"),
        device="cpu",
        note="benchmark only: calibrated on synthetic crops, AUC not measured",
    )
    manifest.setdefault("variants", {})["detector_int8"] = entry


# -- measured subprocesses -----------------------------------------------------------------------


@dataclass
class Measured:
    returncode: int
    seconds: float
    max_rss: int  # bytes, of this child (and its waited-for descendants)
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run `cmd`; its wall time and its own peak RSS.

    Linux keeps a process's peak RSS across fork and exec, so a child forked from this (big)
    benchmark process would report our peak, not its own. So a small launcher
    (`_corpus.py measure`) starts `cmd` from a fresh interpreter and reports `os.wait4` of it.
    """
    with tempfile.TemporaryDirectory(prefix="imgcheck-bench-") as tmp:
        out_path, err_path, rep = (Path(tmp) / n for n in ("out", "err", "report.json"))
        launcher = [sys.executable, str(Path(__file__).resolve()), "measure", str(rep), "--"]
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            done = subprocess.run(
                launcher + cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
        wall = time.perf_counter() - start
        stdout = out_path.read_text("utf-8", "replace")
        stderr = err_path.read_text("utf-8", "replace")
        if not rep.is_file():
            raise RuntimeError(f"launcher failed ({done.returncode}): {stderr.strip()[-300:]}")
        report = json.loads(rep.read_text(encoding="utf-8"))
    return Measured(
        report["returncode"], report.get("seconds", wall), report["max_rss"], stdout, stderr
    )


def _measure(report: Path, cmd: list[str]) -> int:
    """The launcher: run cmd (inheriting stdio), write its exit code, wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    report.write_text(
        json.dumps({"returncode": code, "seconds": seconds, "max_rss": usage.ru_maxrss * 1024}),
        encoding="utf-8",
    )
    return 0


def imgcheck_cmd() -> list[str]:
    """The installed console script next to this interpreter, else `python -m imgcheck`."""
    script = Path(sys.executable).parent / "imgcheck"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "imgcheck"]


def help_seconds(repeat: int = 5) -> float:
    """Best wall time of `imgcheck --help` in a fresh interpreter."""
    best = math.inf
    for _ in range(repeat):
        m = run_measured([*imgcheck_cmd(), "--help"])
        if m.returncode != 0:
            raise RuntimeError(f"imgcheck --help failed: {m.stderr.strip()[-300:]}")
        best = min(best, m.seconds)
    return best


def machine() -> str:
    """CPU model, cores, RAM: one line for the report."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        mem = 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = f"{cpu}, {os.cpu_count()} cores, {mem / 2**30:.0f} GiB RAM, load average {load:.1f}"
    gpu = gpu_name()
    return line if gpu is None else f"{line}, GPU {gpu}"


def gpu_name(providers: list[str] | None = None) -> str | None:
    """The GPU a CUDA session would run on (`nvidia-smi`'s first name), or None when ONNX
    Runtime has no CUDA provider: GPU numbers must say which GPU they are from."""
    if providers is None:
        try:
            import onnxruntime as ort

            providers = list(ort.get_available_providers())
        except ImportError:
            return None
    if "CUDAExecutionProvider" not in providers:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (CUDA provider present, nvidia-smi did not answer)"
    names = [n.strip() for n in out.splitlines() if n.strip()]
    return names[0] if names else "unknown (nvidia-smi listed no GPU)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-model", help="export random-init default-size nets into OUT")
    make.add_argument("out", type=Path)
    make.add_argument("--no-int8", action="store_true")
    measure = sub.add_parser("measure", help="run CMD; write its exit code, wall, peak RSS")
    measure.add_argument("report", type=Path)
    measure.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "measure":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return _measure(args.report, cmd)
    _make_model(args.out, int8=not args.no_int8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
