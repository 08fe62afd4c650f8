"""Colour propagation from sparse hints (Levin, Lischinski & Weiss 2004, "Colorization using
optimization"), the mechanism of scribble- and hint-based colorizers.

Hints: the true ab at a few hundred random pixels (what a user's scribbles or a hint network
supply). Propagation: neighbours with similar L get similar ab. We solve it coarse to fine, as
an iterated edge-aware average (weights exp(-dL^2 / 2 sigma^2) to the 4 neighbours) with the
hints held fixed, on a pyramid up to the working size; then the chroma is stretched over
full-resolution L. The result is piecewise flat colour that stops at luminance edges.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import (
    UPSAMPLERS,
    attach,
    down,
    draw,
    lab_of,
    upsample_chroma,
    work_shape,
)


def _shifts(x: torch.Tensor) -> list[torch.Tensor]:
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return [p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]]


def propagate(
    L: torch.Tensor, hints: torch.Tensor, mask: torch.Tensor, iters: int = 40, sigma: float = 4.0
) -> torch.Tensor:
    """L (1,1,h,w) in [0,100], hints (1,2,h,w), mask (1,1,h,w) -> ab (1,2,h,w)."""
    levels = []
    size = L.shape[-2:]
    while min(size) > 24:
        levels.append(size)
        size = (size[0] // 2, size[1] // 2)
    ab = None
    for size in reversed(levels):
        Ls = down(L, size)
        m = F.adaptive_max_pool2d(mask, size)
        hs = F.adaptive_avg_pool2d(hints * mask, size) / F.adaptive_avg_pool2d(
            mask, size
        ).clamp_min(1e-6)
        if ab is None:
            ab = torch.zeros_like(hs)
        else:
            ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        weights = [torch.exp(-((Ls - n) ** 2) / (2 * sigma**2)) for n in _shifts(Ls)]
        total = sum(weights) + 1e-6
        for _ in range(iters):
            avg = sum(w * n for w, n in zip(weights, _shifts(ab), strict=True)) / total
            ab = torch.where(m > 0, hs, avg)
    assert ab is not None
    return ab


def build(ctx: ZooContext) -> ZooColorizer:
    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        L = lab[:, :1]
        size = work_shape(*L.shape[-2:], int(draw(rng, (128, 192, 256))))
        small = down(lab, size)
        n = int(rng.integers(100, 600))
        mask = torch.zeros(1, 1, *size)
        ys = torch.from_numpy(rng.integers(0, size[0], n))
        xs = torch.from_numpy(rng.integers(0, size[1], n))
        mask[0, 0, ys, xs] = 1.0
        ab = propagate(small[:, :1], small[:, 1:], mask, sigma=float(rng.uniform(2.0, 8.0)))
        return attach(L, upsample_chroma(ab, small[:, :1], L, str(draw(rng, UPSAMPLERS))))

    return colorize
