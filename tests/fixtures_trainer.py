"""Small generated colour photos and a tiny training config for the trainer tests.

The photos are colour gradients with a few filled shapes: enough colour structure for a
colorizer's L1 loss to fall within a few steps, and tiny enough for a CPU test of seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def colour_photo(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, 1 - x], -1) * rng.uniform(0.3, 1.0, 3)
    image = Image.fromarray((base * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, x1 = sorted(int(v) for v in rng.integers(0, size, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, size, 2))
        draw.ellipse([x0, y0, x1 + 6, y1 + 6], fill=colour)
    return image


def photo_tensors(n: int, size: int = 64) -> list:
    """`n` of the photos above as (3, size, size) float tensors in [0, 1], as the zoo takes
    them (torch imported here: this module also serves tests that run without it)."""
    import torch

    return [
        torch.from_numpy(np.array(colour_photo(i, size))).permute(2, 0, 1).float() / 255.0
        for i in range(n)
    ]


def make_photos(root: Path, n: int, size: int = 64, start: int = 0, breeds: int = 3) -> list[Path]:
    """n photos in a Stanford-Dogs-like layout: one sub-folder per breed, jpg and png mixed."""
    paths = []
    for i in range(start, start + n):
        folder = root / f"n0208{i % breeds:04d}-breed_{i % breeds}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"n0208_{i:05d}.{'png' if i % 2 else 'jpg'}"
        colour_photo(i, size).save(path, quality=95)
        paths.append(path)
    return paths


def tiny_config(data: Path, out: Path, **overrides: object) -> object:
    """A TrainConfig that runs all three phases in seconds on a CPU."""
    from imgcheck.trainer.config import TrainConfig

    args = dict(
        data=str(data),
        out=str(out),
        epochs_l1=2,
        epochs_gan=2,
        epochs_cls=1,
        detector="patchgan",  # the classifier-phase tests; the forensic stage has its own
        batch_size=4,
        lr=2e-3,
        crop=32,
        cls_crop=32,
        cls_crops=1,
        work_size=32,
        max_side=64,
        samples=2,
        val_percent=30,
        g_base=8,
        g_depth=2,
        g_max_channels=16,
        d_base=8,
        d_layers=2,
        workers=0,
        log_every=1,
        ckpt_every=2,
        device="cpu",
        cls_sources="l1,gan,lut",
        eval_sources="gan,l1",
    )
    args.update(overrides)
    return TrainConfig(**args)
