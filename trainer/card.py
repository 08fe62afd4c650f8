"""Measure every number in MODEL_CARD.md, on the shipped ONNX models and a held-out split.

Why a separate tool from the trainer's own report: the card must describe what users get,
so the detector is scored through `imgcheck.scanning.scan` (the ONNX runtime path,
JPEG-decoded files and the shipped threshold) and our colorizer through the exported ONNX
colorizer, not through the PyTorch modules that produced them.

Fakes are saved as JPEG quality 95, like the real photos, so "file format" cannot separate the
classes. Robustness re-encodes/resizes/blurs real and fake files alike. Generalisation uses the
EVAL_ONLY colorizers from `baselines.py`, which the detector never saw in training.

    python -m imgcheck.trainer.card --run runs/default --models detector/models \
        --data ../shared/photos/train --out docs/model_card
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from imgcheck.metrics import binary_report
from imgcheck.results import Status
from imgcheck.trainer.baselines import EVAL_ONLY
from imgcheck.trainer.data import Split, load_rgb, to_image
from imgcheck.trainer.nets import ColorizerConfig, UNetColorizer
from imgcheck.trainer.pipeline import colorize_full
from imgcheck.trainer.report import comparison_grid, evaluate_colorizer, grayscale

MAX_SIDE = 1024
JPEG_QUALITY = 95  # the real photos' own encoding
# Colour metrics (SSIM, CIEDE2000) at this long side: ~2 s/image at 1024 px on a 2-core CPU.
COLOUR_METRICS_SIDE = 512

# condition name -> how an image is degraded before it is scored (applied to both classes)
CONDITIONS: dict[str, Callable[[Image.Image], tuple[Image.Image, int]]] = {
    "clean": lambda im: (im, JPEG_QUALITY),
    "jpeg90": lambda im: (im, 90),
    "jpeg75": lambda im: (im, 75),
    "jpeg50": lambda im: (im, 50),
    "resize0.5": lambda im: (
        im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.BICUBIC),
        JPEG_QUALITY,
    ),
    "blur1": lambda im: (im.filter(ImageFilter.GaussianBlur(1.0)), JPEG_QUALITY),
}


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _save_set(images: Iterable[tuple[str, Image.Image]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in images:
        image.save(folder / f"{name}.jpg", quality=JPEG_QUALITY)


def _degrade(src: Path, dst: Path, condition: str) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jpg")):
        with Image.open(path) as im:
            out, quality = CONDITIONS[condition](im.convert("RGB"))
        out.save(dst / path.name, quality=quality)


def _scores(folder: Path, models: Path) -> np.ndarray:
    from imgcheck.scanning import scan

    results = list(scan([folder], model=models, device="cpu"))
    bad = [r for r in results if r.status is not Status.OK]
    if bad:
        raise RuntimeError(
            f"{len(bad)} images in {folder} did not scan: {bad[0].error or bad[0].status}"
        )
    return np.array([r.score for r in results], dtype=np.float64)


def _report(real: np.ndarray, fake: np.ndarray, threshold: float) -> dict[str, Any]:
    labels = np.r_[np.zeros(real.size), np.ones(fake.size)]
    return binary_report(labels, np.r_[real, fake], threshold)


def _onnx_colorizer(models: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    from imgcheck.colorizing import colorize

    def run(batch: torch.Tensor) -> torch.Tensor:
        outs = []
        for img in batch:
            arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            outs.append(_tensor(Image.fromarray(colorize(arr, model=models, device="cpu"))))
        return torch.stack(outs)

    return run


def _torch_colorizer(state: dict[str, Any], config: dict[str, Any], work_size: int) -> Any:
    net = UNetColorizer(ColorizerConfig(**config)).eval()
    net.load_state_dict(state)

    @torch.no_grad()
    def run(batch: torch.Tensor) -> torch.Tensor:
        return colorize_full(net, batch, work_size)

    return run


def _baselines(split: Split, names: Iterable[str], work_size: int) -> dict[str, Any]:
    from imgcheck.trainer.baselines import build_baseline

    photos = [_tensor(load_rgb(p, 256)) for p in split.paths("train")]
    return {name: build_baseline(name, photos, work_size=work_size) for name in names}


def measure(
    run: Path, models: Path, out: Path, data: Path | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Compute all model-card tables; write `metrics.json`, `tables.md` and a figure to `out`."""
    from imgcheck.models import resolve

    t0 = time.perf_counter()
    split = Split.from_dict(json.loads((run / "split.json").read_text()))
    if data is not None:
        split.root = str(data)
    final = torch.load(run / "checkpoints" / "final.pt", map_location="cpu", weights_only=True)
    work = int(final["work_size"])
    threshold = resolve("detector", models).threshold
    assert threshold is not None
    val = [(p.stem, load_rgb(p, MAX_SIDE)) for p in split.paths("val")[:limit]]

    ours = _onnx_colorizer(models)
    families = {
        "ours_gan": ours,
        "ours_l1": _torch_colorizer(final["generator_l1"], final["generator_config"], work),
        **_baselines(split, ["lut", "exemplar", "knn"], work),
    }
    result: dict[str, Any] = {
        "n_val": len(val),
        "n_train": len(split.train),
        "threshold": threshold,
        "data_digest": split.data_digest,
        "held_out": sorted(EVAL_ONLY),
    }
    with tempfile.TemporaryDirectory(prefix="imgcheck-card-") as tmp_name:
        tmp = Path(tmp_name)
        _save_set(val, tmp / "real" / "clean")
        for fam, fn in families.items():
            fakes = ((n, to_image(fn(_tensor(im)[None])[0])) for n, im in val)
            _save_set(fakes, tmp / fam / "clean")
        real = _scores(tmp / "real" / "clean", models)
        result["detector"] = {
            fam: _report(real, _scores(tmp / fam / "clean", models), threshold) for fam in families
        }
        robustness: dict[str, Any] = {}
        for condition in CONDITIONS:
            if condition != "clean":
                for fam in ("real", "ours_gan"):
                    _degrade(tmp / fam / "clean", tmp / fam / condition, condition)
            robustness[condition] = _report(
                _scores(tmp / "real" / condition, models),
                _scores(tmp / "ours_gan" / condition, models),
                threshold,
            )
        result["robustness"] = robustness

    small = [_tensor(_fit(im, COLOUR_METRICS_SIDE)) for _, im in val]
    result["colorizer_side"] = COLOUR_METRICS_SIDE
    result["colorizer"] = {fam: evaluate_colorizer(fn, small) for fam, fn in families.items()}
    out.mkdir(parents=True, exist_ok=True)
    rows = [(t, grayscale(t[None])[0], ours(t[None])[0]) for t in small[:4]]
    comparison_grid(rows, out / "comparison.png", cell=256)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (out / "tables.md").write_text(tables_markdown(result))
    return result


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    if scale >= 1:
        return image
    return image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BOX
    )


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _row(name: str, r: dict[str, Any]) -> str:
    return (
        f"| {name} | {_f(r['auc'])} | {_f(r['ap'])} | {_f(r['acc_real'])} | {_f(r['acc_fake'])} "
        f"| {_f(r['hter'])} | {_f(r['tpr_at_fpr1'])} | {_f(r['tpr_at_fpr5'])} |"
    )


def tables_markdown(m: dict[str, Any]) -> str:
    """The model card's tables, in Markdown, from `metrics.json`."""
    header = [
        "| | AUC | AP | acc real | acc fake | HTER | TPR@1%FPR | TPR@5%FPR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    held = set(m["held_out"])
    lines = [
        f"Validation split: {m['n_val']} real photos never used in training "
        f"({m['n_train']} trained on); shipped threshold {m['threshold']:.4f}. Every image "
        "(real and colorized) is a JPEG q95 file scored by `imgcheck scan`'s pipeline.",
        "",
        "#### Detector, per colorizer (held out = never seen in training)",
        "",
        *header,
    ]
    for fam, r in m["detector"].items():
        tag = " (held out)" if fam in held else " (trained on)" if fam != "ours_gan" else ""
        lines.append(_row(fam + tag, r))
    lines += ["", "#### Robustness: ours_gan vs real, both degraded alike", "", *header]
    lines += [_row(cond, r) for cond, r in m["robustness"].items()]
    col = m["colorizer"]
    first = next(iter(col.values()))
    lines += [
        "",
        f"#### Colorizer (validation photos at long side {m['colorizer_side']}, greyed and "
        "colorized; higher PSNR/SSIM and lower ΔE2000 are better)",
        "",
        "| method | PSNR dB | SSIM | ΔE2000 | colourfulness | ratio to real |",
        "|---|---|---|---|---|---|",
        f"| grayscale baseline | {_f(first['gray_psnr'], 2)} | {_f(first['gray_ssim'])} "
        f"| {_f(first['gray_delta_e2000'], 2)} | 0 | 0 |",
    ]
    for fam, r in col.items():
        lines.append(
            f"| {fam} | {_f(r['psnr'], 2)} | {_f(r['ssim'])} | {_f(r['delta_e2000'], 2)} "
            f"| {_f(r['colorfulness'], 1)} | {_f(r['colorfulness_ratio'], 2)} |"
        )
    lines.append(f"| real photos | | | | {_f(first['colorfulness_real'], 1)} | 1.00 |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m imgcheck.trainer.card", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--run", type=Path, required=True, help="training run folder (split.json, final.pt)"
    )
    p.add_argument(
        "--models", type=Path, required=True, help="exported model folder (manifest.json)"
    )
    p.add_argument(
        "--data", type=Path, default=None, help="photo folder, if it moved since training"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="where metrics.json, tables.md, comparison.png go"
    )
    p.add_argument("--limit", type=int, default=None, help="first N validation photos (smoke runs)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = measure(args.run, args.models, args.out, args.data, args.limit)
    print(tables_markdown(result))


if __name__ == "__main__":
    main()
