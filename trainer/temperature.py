"""Pick the bins head's annealed-mean temperature on validation photos, after training.

The temperature T only changes how the predicted ab distribution is decoded (softmax(z / T)
then its mean), not the weights: T -> 1 gives the distribution's mean (safe, muted, brown),
T -> 0 its mode (vivid, riskier). Zhang et al. used 0.38 by eye. We measure instead: the
most colourful T whose PSNR is still at least the grayscale baseline's (leaving the photo grey
must not be better), written into final.pt's generator config for export.

    python -m imgcheck.trainer.temperature --run runs/NAME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from imgcheck.trainer.config import TrainError
from imgcheck.trainer.data import Split, load_rgb, to_tensor
from imgcheck.trainer.nets import ColorizerConfig, UNetColorizer
from imgcheck.trainer.pipeline import colorize_full
from imgcheck.trainer.report import evaluate_colorizer
from imgcheck.trainer.runs import load_json, save_json, save_torch

CANDIDATES = (0.2, 0.3, 0.38, 0.5, 0.7, 1.0)


def sweep(
    state: dict[str, torch.Tensor],
    gcfg: dict[str, Any],
    photos: list[torch.Tensor],
    work_size: int,
    temps: tuple[float, ...] = CANDIDATES,
) -> dict[float, dict[str, float]]:
    out = {}
    for t in temps:
        G = UNetColorizer(ColorizerConfig(**{**gcfg, "temperature": t}))
        G.load_state_dict(state)
        G.eval()
        with torch.no_grad():
            out[t] = evaluate_colorizer(lambda x, G=G: colorize_full(G, x, work_size), photos)
    return out


def choose(results: dict[float, dict[str, float]]) -> float:
    """The most colourful T with PSNR >= the grayscale baseline's; else the best-PSNR T."""
    ok = [t for t, m in results.items() if m["psnr"] >= m["gray_psnr"]]
    if ok:
        return max(ok, key=lambda t: results[t]["colorfulness"])
    return max(results, key=lambda t: results[t]["psnr"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.temperature")
    ap.add_argument("--run", required=True, type=Path)
    args = ap.parse_args(argv)
    try:
        return _tune(args.run)
    except (OSError, RuntimeError, KeyError, TrainError) as exc:
        print(f"imgcheck train: error: {exc}", file=sys.stderr)
        return 2


def _tune(run: Path) -> int:
    final_path = run / "checkpoints" / "final.pt"
    if not final_path.is_file():
        raise TrainError(f"{final_path} not found: point --run at a finished training run")
    final = torch.load(final_path, map_location="cpu", weights_only=True)
    gcfg = dict(final["generator_config"])
    if gcfg.get("head", "regression") != "bins":
        print("imgcheck train: error: the generator has no bins head to tune", file=sys.stderr)
        return 2
    split = Split.from_dict(load_json(run / "split.json"))
    work = int(final["work_size"])
    photos = [to_tensor(load_rgb(p, work)).float() / 255.0 for p in split.paths("val")]
    results = sweep(final["generator"], gcfg, photos, work)
    best = choose(results)
    for t, m in results.items():
        print(
            f"T {t:.2f}: PSNR {m['psnr']:.2f} (grey {m['gray_psnr']:.2f}), colourfulness "
            f"{m['colorfulness_ratio']:.2f}x real, chroma {m['chroma_ratio']:.2f}x, "
            f"dE2000 {m['delta_e2000']:.2f}" + ("  <- chosen" if t == best else "")
        )
    final["generator_config"] = {**gcfg, "temperature": best}
    save_torch(final, final_path)
    save_json(
        {"chosen": best, "rule": choose.__doc__, "results": {str(t): m for t, m in results.items()}},
        run / "temperature.json",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

