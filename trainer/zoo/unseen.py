"""Families no shipped detector was trained or calibrated on: the out-of-sample check.

The LOFO table predicts how the detector fares on a colorizer it never saw, but every family in
it shaped the recipe (features, head, families chosen) over many runs. These were written after
the shipped detector and are left out of `TrainConfig.zoo_families` on purpose, so that
`trainer.zoo_fakes` + `imgcheck evaluate` measure the shipped model on mechanisms that did not
inform it. Each is a different way to invent chroma without knowing the scene:

- `random_cnn`: an untrained 3-layer CNN maps L (at a drawn working size) to ab, rescaled to a
  plausible chroma level and stretched back by a drawn upsampler: a network colorizer with no
  colour knowledge at all.
- `hue_field`: a smooth random hue field (a few control points, bicubic) at a chroma that fades
  toward black and white: colour that ignores the image's structure entirely.
- `mirror`: the photo's own true chroma, mirrored left-right or top-bottom: camera-grade colour
  texture sitting on the wrong luminance.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import WORK_SIZES, attach, colorize_at_work_size, lab_of


def _seeded(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(1 << 31)))


def build_random_cnn(ctx: ZooContext) -> ZooColorizer:
    def predict(L_small: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        gen = _seeded(rng)
        x = L_small / 50.0 - 1.0
        for cin, cout in ((1, 16), (16, 16), (16, 2)):
            w = torch.randn(cout, cin, 5, 5, generator=gen) * (2.0 / math.sqrt(cin * 25))
            x = F.conv2d(x, w, padding=2)
            x = torch.tanh(x) if cout != 2 else x
        x = x - 0.5 * x.mean(dim=(-1, -2), keepdim=True)  # a cast, but not the whole colour
        rms = x.pow(2).sum(1).mean().sqrt().clamp_min(1e-6)
        return x / rms * float(rng.uniform(12.0, 30.0))

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return colorize_at_work_size(rgb, rng, WORK_SIZES, predict)

    return colorize


def build_hue_field(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        L = lab_of(rgb)[:, :1]
        points = int(rng.choice([3, 5, 8]))
        seed = torch.rand(1, 1, points, points, generator=_seeded(rng)) * (3.0 * math.pi)
        hue = F.interpolate(seed, size=L.shape[-2:], mode="bicubic", align_corners=False)
        t = L / 100.0
        chroma = float(rng.uniform(10.0, 35.0)) * (1.0 - ((t - 0.55) / 0.55) ** 2).clamp(0, 1)
        return attach(L, torch.cat([chroma * torch.cos(hue), chroma * torch.sin(hue)], dim=1))

    return colorize


def build_mirror(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        ab = lab[:, 1:].flip(-1) if rng.random() < 0.5 else lab[:, 1:].flip(-2)
        return attach(lab[:, :1], ab)

    return colorize


__all__ = ["build_hue_field", "build_mirror", "build_random_cnn"]
