"""Choose the colorizer's decode setting on validation photos, after training.

The setting changes how the network's output is decoded, not its weights:
- bins head: the annealed-mean temperature T (softmax(z / T), then its mean). T -> 1 gives the
  distribution's mean (muted), T -> 0 its mode (vivid, riskier). Zhang et al. chose 0.38 by eye.
- regression head: the chroma gain g on the predicted ab. An MSE regression predicts the
  conditional mean, which is muted wherever colour is ambiguous; g scales it back up
  (`nets.ColorizerConfig`).

We measure instead of choosing by eye: the most colourful setting whose PSNR is still at least
the grayscale baseline's (leaving the photo grey must not be better). The run's two generator
snapshots are candidates alike, the final GAN one and the one from the end of pre-training
(phase `l1`): whether the adversarial phase helped on photos it never saw is a measurement,
like early stopping. The choice is written into final.pt (`generator`, `generator_config`; a
replaced GAN generator is kept as `generator_gan`) for export. Because the same photos choose
and report, the choice is also made on each half of them and measured on the other (`held_out`).

    python -m imgcheck.trainer.decode --run runs/NAME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from imgcheck.trainer.config import TrainError
from imgcheck.trainer.data import Split, load_rgb, to_tensor
from imgcheck.trainer.nets import decode_setting, frozen_generator
from imgcheck.trainer.pipeline import colorize_full
from imgcheck.trainer.report import colorizer_rows, summarise_colorizer
from imgcheck.trainer.runs import load_json, save_json, save_torch

CANDIDATES = {
    "temperature": (0.2, 0.3, 0.38, 0.5, 0.7, 1.0),
    "gain": (1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5),
}


def sweep(
    state: dict[str, torch.Tensor],
    gcfg: dict[str, Any],
    photos: list[torch.Tensor],
    work_size: int,
    values: tuple[float, ...] | None = None,
) -> dict[float, list[dict[str, float]]]:
    """Per candidate value: the per-photo metrics (`report.colorizer_rows`)."""
    key = decode_setting(gcfg)
    out = {}
    for v in values or CANDIDATES[key]:
        G = frozen_generator(state, {**gcfg, key: v})
        with torch.no_grad():
            out[v] = colorizer_rows(lambda x, G=G: colorize_full(G, x, work_size), photos)
    return out


def choose(results: dict[Any, dict[str, float]]) -> Any:
    """The most colourful setting with PSNR >= the grayscale baseline's; else the best-PSNR one."""
    ok = [t for t, m in results.items() if m["psnr"] >= m["gray_psnr"]]
    if ok:
        return max(ok, key=lambda t: results[t]["colorfulness"])
    return max(results, key=lambda t: results[t]["psnr"])


def held_out(per_value: dict[Any, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Choose on the even-indexed photos and measure on the odd ones, and the other way round."""
    out = []
    for pick, measure in ((0, 1), (1, 0)):
        chosen = choose({v: summarise_colorizer(r[pick::2]) for v, r in per_value.items()})
        out.append({"chosen": chosen, **summarise_colorizer(per_value[chosen][measure::2])})
    return out


def calibrate(run: Path, say: Any = print) -> dict[str, Any]:
    """Sweep snapshot x decode setting on the run's validation photos, write the choice into
    final.pt and RUN/decode.json, and return that record."""
    final_path = run / "checkpoints" / "final.pt"
    if not final_path.is_file():
        raise TrainError(f"{final_path} not found: point --run at a finished training run")
    final = torch.load(final_path, map_location="cpu", weights_only=True)
    final.setdefault("generator_gan", final["generator"])  # idempotent: re-runs see the GAN one
    gcfg = dict(final["generator_config"])
    key = decode_setting(gcfg)
    split = Split.from_dict(load_json(run / "split.json"))
    work = int(final["work_size"])
    photos = [to_tensor(load_rgb(p, work)).float() / 255.0 for p in split.paths("val")]
    snapshots = {"gan": final["generator_gan"], "pre": final["generator_l1"]}
    per_value = {
        (snap, v): rows
        for snap, state in snapshots.items()
        for v, rows in sweep(state, gcfg, photos, work).items()
    }
    results = {c: summarise_colorizer(r) for c, r in per_value.items()}
    best = choose(results)
    for (snap, v), m in results.items():
        say(
            f"{snap} {key} {v:.2f}: PSNR {m['psnr']:.2f} (grey {m['gray_psnr']:.2f}), "
            f"colourfulness {m['colorfulness_ratio']:.2f}x real, chroma {m['chroma_ratio']:.2f}x, "
            f"dE2000 {m['delta_e2000']:.2f}" + ("  <- chosen" if (snap, v) == best else "")
        )
    halves = held_out(per_value)
    for h in halves:
        snap, v = h["chosen"]
        say(
            f"held-out half: {snap} {key} {v:.2f} chosen on the other half -> PSNR "
            f"{h['psnr']:.2f} (grey {h['gray_psnr']:.2f}), colourfulness "
            f"{h['colorfulness_ratio']:.2f}x"
        )
    snap, value = best
    final["generator"] = snapshots[snap]
    final["generator_config"] = {**gcfg, key: value}
    save_torch(final, final_path)
    record = {
        "setting": key,
        "snapshot": snap,
        "chosen": value,
        "rule": choose.__doc__,
        "results": {f"{s} {v}": m for (s, v), m in results.items()},
        "held_out_halves": [
            {**h, "chosen": h["chosen"][1], "snapshot": h["chosen"][0]} for h in halves
        ],
    }
    save_json(record, run / "decode.json")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.decode")
    ap.add_argument("--run", required=True, type=Path)
    args = ap.parse_args(argv)
    try:
        calibrate(args.run)
    except (OSError, RuntimeError, KeyError, TrainError) as exc:
        print(f"imgcheck train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
