"""Write zoo families' fakes of the validation photos as image folders, for `imgcheck evaluate`.

    python -m imgcheck.trainer.zoo_fakes --data DATA --out OUT [--families random_cnn,...]
    imgcheck evaluate --real OUT/real --fake OUT/random_cnn

Why folders and not the zoo's feature files: the shipped detector is then measured through the
user's own path (files on disk, decode, view, cascade), on photos no model trained on (the
content-hash validation split of DATA, as `imgcheck train` draws it). Both classes are written
the way a catalog holds them, JPEG q90 with 4:2:0 chroma, so that the encoding cannot be the
tell. The default families are `zoo.HELD_OUT`: mechanisms no shipped model was trained on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from imgcheck.trainer.config import TrainError
from imgcheck.trainer.data import build_split, load_rgb, to_image, to_tensor
from imgcheck.trainer.zoo import HELD_OUT, ZooContext, build_zoo


def write_fakes(
    data: Path,
    out: Path,
    names: list[str],
    *,
    val_percent: int = 20,
    max_side: int = 1024,
    seed: int = 0,
) -> dict[str, int]:
    """OUT/real and OUT/<family> hold one JPEG per validation photo (same file names); returns
    how many were written per folder. Families that need a run's snapshots are refused."""
    split = build_split(data, val_percent, max_side=max_side)
    zoo = build_zoo(names, ZooContext(photos=[], seed=seed))
    missing = [n for n in names if n not in zoo]
    if missing:
        raise TrainError(f"families {missing} need a training run's models; use the zoo stage")
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(["real", *names], 0)
    for i, path in enumerate(split.paths("val")):
        rgb = to_tensor(load_rgb(path, max_side)).float()[None] / 255.0
        name = f"{i:04d}-{path.stem}.jpg"
        outputs = {"real": rgb}
        outputs.update({n: zoo[n](rgb, rng).clamp(0, 1) for n in names})
        for folder, image in outputs.items():
            target = out / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            to_image(image[0]).save(target, "JPEG", quality=90, subsampling=2)
            counts[folder] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.zoo_fakes")
    ap.add_argument("--data", required=True, type=Path, help="the photo folder a run trains on")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--families", default=",".join(HELD_OUT))
    ap.add_argument("--val-percent", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"imgcheck zoo_fakes: error: {args.out} is not empty", file=sys.stderr)
        return 2
    names = [n for n in args.families.split(",") if n]
    try:
        with torch.no_grad():
            counts = write_fakes(
                args.data, args.out, names, val_percent=args.val_percent, seed=args.seed
            )
    except (OSError, KeyError, TrainError) as exc:
        print(f"imgcheck zoo_fakes: error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{k}: {v}" for k, v in counts.items()), f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
