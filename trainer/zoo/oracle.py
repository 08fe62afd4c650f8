"""Corruptions of the TRUE chroma: each isolates one trace a colorizer leaves.

- `oracle_lowres`: perfect hues at a working size (96-512 px), stretched back by a drawn
  upsampler: the resolution trace alone, with none of a network's colour habits.
- `oracle_tone`: hue rotated, saturation scaled or ab quantized (at full or working
  resolution): implausible colour with plausible structure.
- `oracle_shift`: the chroma of a neighbouring region (shifted by 4-32 px): chroma edges that
  do not sit on luminance edges.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import (
    UPSAMPLERS,
    WORK_SIZES,
    attach,
    down,
    draw,
    lab_of,
    upsample_chroma,
    work_shape,
)


def _lowres(lab: torch.Tensor, rng: np.random.Generator, sizes: tuple = WORK_SIZES) -> torch.Tensor:
    L = lab[:, :1]
    size = work_shape(*L.shape[-2:], int(draw(rng, sizes)))
    small = down(lab, size)
    return upsample_chroma(small[:, 1:], small[:, :1], L, str(draw(rng, UPSAMPLERS)))


def build_lowres(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        return attach(lab[:, :1], _lowres(lab, rng))

    return colorize


def build_tone(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        ab = lab[:, 1:] if rng.random() < 0.3 else _lowres(lab, rng, (256, 384, 512))
        kind = int(rng.integers(3))
        if kind == 0:
            t = math.radians(rng.uniform(30, 150) * (1 if rng.random() < 0.5 else -1))
            a, b = ab[:, :1], ab[:, 1:]
            ab = torch.cat(
                [a * math.cos(t) - b * math.sin(t), a * math.sin(t) + b * math.cos(t)], 1
            )
        elif kind == 1:
            ab = ab * float(rng.uniform(0.3, 0.6) if rng.random() < 0.5 else rng.uniform(1.5, 2.2))
        else:
            step = float(rng.uniform(8, 20))
            ab = torch.round(ab / step) * step
        return attach(lab[:, :1], ab)

    return colorize


def build_shift(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        ab = lab[:, 1:] if rng.random() < 0.5 else _lowres(lab, rng, (256, 384, 512))
        dy, dx = (int(rng.integers(4, 33)) * (1 if rng.random() < 0.5 else -1) for _ in range(2))
        ab = torch.roll(ab, shifts=(dy, dx), dims=(-2, -1))
        return attach(lab[:, :1], ab)

    return colorize
