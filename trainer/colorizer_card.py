"""The colorizer's model-card numbers and figure, measured on the run's validation photos.

Every colorizer is judged by `report.evaluate_colorizer` on the same photos (long side = the
work size, never trained on): the grayscale baseline, the run's generator after pre-training
(phase `l1`, no GAN) and after the GAN phase (both decoded as trained, gain 1), the shipped ONNX
colorizer (the GAN generator at the chosen decode gain, exactly what `imgcheck colorize` runs),
optionally an older ONNX colorizer for comparison, and the constant-cast baseline (the training
photos' mean colour everywhere: what a network that learned only the average colour does). Writes OUT/colorizer.json and
OUT/comparison.png (8 spread-out photos: original | grayscale | pre-training | shipped [| old]).

    python -m imgcheck.trainer.colorizer_card --run runs/NAME \
        --onnx detector/models/colorizer.onnx --old-onnx old/colorizer.onnx --out docs/model_card

Without the run folder (`--data DIR` instead of `--run`): the validation photos are found
again by content hash (`data.build_split`, the run's default 20 %), and only the ONNX
colorizers are measured. That is how a shipped colorizer is re-measured after its run folder
is gone; the photos are the same ones when DIR holds the run's data (the split's digest says).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgcheck.trainer.colour import fit_to_gamut, lab_to_rgb, rgb_to_lab, rgb_to_luminance
from imgcheck.trainer.config import TrainError
from imgcheck.trainer.data import Split, build_split, load_rgb, to_tensor
from imgcheck.trainer.nets import frozen_generator
from imgcheck.trainer.pipeline import colorize_full
from imgcheck.trainer.report import comparison_grid, evaluate_colorizer, grayscale
from imgcheck.trainer.runs import load_json, save_json

ROWS = 8
Colorize = Callable[[torch.Tensor], torch.Tensor]


def torch_colorizer(state: dict[str, torch.Tensor], gcfg: dict[str, Any], work: int) -> Colorize:
    G = frozen_generator(state, gcfg)

    @torch.no_grad()
    def run(rgb: torch.Tensor) -> torch.Tensor:
        return colorize_full(G, rgb, work)

    return run


def onnx_colorizer(path: Path) -> Colorize:
    """An exported colorizer graph (uint8 NHWC in and out) as a (N, 3, H, W) float function."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        (out,) = session.run(None, {name: np.ascontiguousarray(x)})
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(0, 3, 1, 2)

    return run


@torch.no_grad()
def constant_cast(train_photos: list[torch.Tensor]) -> Colorize | None:
    """The baseline a colorizer must beat to have learned anything: every pixel gets the
    training photos' mean ab (each photo weighted alike), kept in gamut, on the photo's own L.

    Nearly half of a photo's chroma energy is its overall cast (45 % on our validation photos),
    and the average cast is a warm brown, so "sepia" is what a network that learned only the
    average colour produces; this row says how much of a colorizer's explained chroma is that."""
    if not train_photos:
        return None
    ab = torch.stack([rgb_to_lab(p[None].double())[0, 1:].mean(dim=(-1, -2)) for p in train_photos])
    mean_ab = ab.mean(0).float().view(1, 2, 1, 1)

    def run(rgb: torch.Tensor) -> torch.Tensor:
        L = rgb_to_luminance(rgb)
        cast = mean_ab.expand(L.shape[0], 2, *L.shape[-2:])
        return lab_to_rgb(torch.cat([L, fit_to_gamut(L, cast)], dim=-3))

    return run


def _with_cast(colorizers: dict[str, Colorize], split: Split, work: int) -> dict[str, Colorize]:
    train = [to_tensor(load_rgb(p, work)).float() / 255.0 for p in split.paths("train")]
    cast = constant_cast(train)
    return colorizers if cast is None else {**colorizers, "constant cast": cast}


def measure_onnx(
    data: Path, onnx: Path, old_onnx: Path | None, out: Path, val_percent: int = 20
) -> dict[str, Any]:
    """`measure` without a run folder: the ONNX colorizers on DIR's validation photos."""
    split = build_split(data, val_percent)
    work = _onnx_work_size(onnx)
    photos = [to_tensor(load_rgb(p, work)).float() / 255.0 for p in split.paths("val")]
    colorizers = {"shipped": onnx_colorizer(onnx)}
    if old_onnx is not None:
        colorizers["imgcheck 0.1"] = onnx_colorizer(old_onnx)
    return _record(photos, work, _with_cast(colorizers, split, work), {}, out, split.data_digest)


def _onnx_work_size(path: Path) -> int:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "imgcheck.work_size" not in props:
        raise TrainError(f"{path} is not an imgcheck colorizer (no imgcheck.work_size)")
    return int(props["imgcheck.work_size"])


def measure(run: Path, onnx: Path, old_onnx: Path | None, out: Path) -> dict[str, Any]:
    final_path = run / "checkpoints" / "final.pt"
    if not final_path.is_file():
        raise TrainError(f"{final_path} not found: point --run at a finished training run")
    final = torch.load(final_path, map_location="cpu", weights_only=True)
    gcfg = dict(final["generator_config"])
    work = int(final["work_size"])
    split = Split.from_dict(load_json(run / "split.json"))
    paths = split.paths("val")
    photos = [to_tensor(load_rgb(p, work)).float() / 255.0 for p in paths]
    raw = {**gcfg, "gain": 1.0}  # the snapshots as trained
    colorizers: dict[str, Colorize] = {
        "pre-training (no GAN)": torch_colorizer(final["generator_l1"], raw, work),
        "GAN, gain 1": torch_colorizer(final.get("generator_gan", final["generator"]), raw, work),
        "shipped": onnx_colorizer(onnx),
    }
    if old_onnx is not None:
        colorizers["imgcheck 0.1"] = onnx_colorizer(old_onnx)
    decode = {k: gcfg.get(k) for k in ("head", "gain", "temperature")}
    return _record(
        photos, work, _with_cast(colorizers, split, work), decode, out, split.data_digest
    )


def _record(
    photos: list[torch.Tensor],
    work: int,
    colorizers: dict[str, Colorize],
    decode: dict[str, Any],
    out: Path,
    digest: str,
) -> dict[str, Any]:
    results = {name: evaluate_colorizer(fn, photos) for name, fn in colorizers.items()}
    picks = [photos[round(i * (len(photos) - 1) / (ROWS - 1))] for i in range(ROWS)]
    shown = [n for n in ("pre-training (no GAN)", "shipped", "imgcheck 0.1") if n in colorizers]
    rows = [(p, grayscale(p[None])[0], *(colorizers[n](p[None])[0] for n in shown)) for p in picks]
    out.mkdir(parents=True, exist_ok=True)
    comparison_grid(rows, out / "comparison.png", headers=("original", "grayscale", *shown))
    record = {
        "photos": len(photos),
        "long_side": work,
        "data_digest": digest,
        "decode": decode,
        "results": results,
        "figure_columns": ["original", "grayscale", *shown],
    }
    save_json(record, out / "colorizer.json")
    return record


def markdown(record: dict[str, Any]) -> str:
    first = next(iter(record["results"].values()))
    lines = [
        f"Grayscale baseline: PSNR {first['gray_psnr']:.2f} dB, ΔE2000 "
        f"{first['gray_delta_e2000']:.2f} ({record['photos']} validation photos at long side "
        f"{record['long_side']}).",
        "",
        "| colorizer | PSNR dB | vs grey dB | ΔE2000 | colourfulness / real | mean chroma / real "
        "| chroma explained | chroma ceiling at grey |",
        "|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for name, m in record["results"].items():
        lines.append(
            f"| {name} | {m['psnr']:.2f} | {m['psnr'] - m['gray_psnr']:+.2f} | "
            f"{m['delta_e2000']:.2f} | {m['colorfulness_ratio']:.2f} | {m['chroma_ratio']:.2f} | "
            f"{m.get('chroma_explained', nan):.3f} | {m.get('chroma_ceiling', nan):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.colorizer_card")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a finished training run folder")
    source.add_argument(
        "--data", type=Path, help="no run folder: the photo folder it trained on (ONNX only)"
    )
    ap.add_argument("--onnx", required=True, type=Path, help="the exported colorizer.onnx")
    ap.add_argument("--old-onnx", type=Path, default=None, help="an older colorizer to compare")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    try:
        if args.run is not None:
            record = measure(args.run, args.onnx, args.old_onnx, args.out)
        else:
            record = measure_onnx(args.data, args.onnx, args.old_onnx, args.out)
    except (OSError, RuntimeError, KeyError, TrainError) as exc:
        print(f"imgcheck train: error: {exc}", file=sys.stderr)
        return 2
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
