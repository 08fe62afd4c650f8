"""Which detector view to ship: AUC and images/s of each view option, measured in one run.

Colorization cues live largely in chroma detail, so a plain downscale of the whole image may
wash them out; native-resolution crops cost more per image. This measures both on the held-out
validation split of a training run: real photos (as shipped, JPEG q95) against the same photos
colorized by the exported colorizer (saved as JPEG q95 too), each view scored through the scan
pipeline. AUC is threshold-free, so views other than the calibrated one compare fairly.

    python benchmarks/bench_views.py --run runs/default --models detector/models
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgcheck.colorizing import colorize
from imgcheck.metrics import roc_auc
from imgcheck.results import Status
from imgcheck.scanning import scan

VIEWS = {
    "resize (whole image squashed to 256x256)": "mode=resize,crop=256",
    "center (one 256 crop)": "mode=center,crop=256",
    "grid 2x2 (four 256 crops)": "mode=grid,grid=2,crop=256",
    "grid 3x3 (nine 256 crops)": "mode=grid,grid=3,crop=256",
}


def _val_paths(run: Path, data: Path | None) -> list[Path]:
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    root = data or Path(split["root"])
    return [root / p for p in split["val"]]


def _scores(folder: Path, models: Path, view: str) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    results = [r for r in scan([folder], model=models, device="cpu", view=view)]
    seconds = time.perf_counter() - t0
    return np.array([r.score for r in results if r.status is Status.OK]), len(results) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run (split.json)")
    p.add_argument("--models", type=Path, required=True, help="exported model folder")
    p.add_argument("--data", type=Path, default=None, help="photo folder if it moved")
    p.add_argument("--limit", type=int, default=None, help="first N validation photos (smoke runs)")
    args = p.parse_args()
    paths = _val_paths(args.run, args.data)[: args.limit]
    with tempfile.TemporaryDirectory(prefix="imgcheck-views-") as tmp:
        real, fake = Path(tmp, "real"), Path(tmp, "fake")
        real.mkdir()
        fake.mkdir()
        for i, path in enumerate(paths):
            with Image.open(path) as im:
                rgb = im.convert("RGB")
            rgb.save(real / f"{i:04d}.jpg", quality=95)
            colorize(rgb, model=args.models, device="cpu").save(fake / f"{i:04d}.jpg", quality=95)
        print(f"{len(paths)} validation photos, real vs colorized by the exported colorizer")
        print(f"{'view':44s} {'AUC':>7s} {'images/s':>9s}")
        for name, view in VIEWS.items():
            r, r_speed = _scores(real, args.models, view)
            f, f_speed = _scores(fake, args.models, view)
            auc = roc_auc(np.r_[np.zeros(r.size), np.ones(f.size)], np.r_[r, f])
            print(f"{name:44s} {auc:7.4f} {2 / (1 / r_speed + 1 / f_speed):9.2f}")


if __name__ == "__main__":
    main()
