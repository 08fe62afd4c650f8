"""Hand colouring by regions: flat colour laid over segments of the photo, as a retoucher (or a
"paint by region" app) does it.

The grey photo is cut into regions by k-means on (L, y, x) at a small working size (a
superpixel-like segmentation that follows luminance edges), and each region is painted one
flat colour: its true mean chroma (a colourist who knows the scene), re-saturated and slightly
hue-shifted, or, for some regions, a colour picked from another photo's palette. The flat
chroma is then stretched over full-resolution L by a drawn upsampler. Unlike `tint`, colour
does not follow L; unlike `propagation`, nothing varies inside a region.
"""

from __future__ import annotations

import math

import numpy as np
import torch

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


def segments(L: torch.Tensor, k: int, spatial: float, iters: int = 6) -> torch.Tensor:
    """(1, 1, h, w) L in [0, 100] -> (h, w) labels of k-means on (L, spatial * y, spatial * x),
    started on a regular grid of centres."""
    h, w = L.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    scale = 100.0 / max(h, w)
    pts = torch.stack([L[0, 0], ys * scale * spatial, xs * scale * spatial], -1).reshape(-1, 3)
    g = max(1, round(math.sqrt(k)))
    cy = (torch.arange(g, dtype=torch.float32) + 0.5) * h / g
    cx = (torch.arange(g, dtype=torch.float32) + 0.5) * w / g
    idx = torch.cartesian_prod(cy.long().clamp_max(h - 1), cx.long().clamp_max(w - 1))
    centres = pts.reshape(h, w, 3)[idx[:, 0], idx[:, 1]]
    for _ in range(iters):
        labels = torch.cdist(pts, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, labels, pts)
        counts = torch.bincount(labels, minlength=len(centres)).clamp_min(1)[:, None]
        centres = sums / counts
    return labels.reshape(h, w)


def build(ctx: ZooContext) -> ZooColorizer:
    palettes = [lab_of(p[None])[0, 1:].reshape(2, -1).T for p in ctx.photos[:32]]

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lab = lab_of(rgb)
        L = lab[:, :1]
        size = work_shape(*L.shape[-2:], int(draw(rng, (96, 128, 160))))
        small = down(lab, size)
        labels = segments(small[:, :1], int(rng.integers(8, 40)), float(rng.uniform(0.15, 0.6)))
        n = int(labels.max()) + 1
        counts = torch.bincount(labels.flatten(), minlength=n).clamp_min(1).float()
        ab = small[0, 1:].reshape(2, -1)
        mean = torch.stack([torch.bincount(labels.flatten(), ab[c], n) for c in (0, 1)], 1)
        mean = mean / counts[:, None]
        sat = torch.from_numpy(rng.uniform(0.7, 1.4, n)).float()[:, None]
        turn = torch.from_numpy(rng.normal(0.0, 0.25, n)).float()
        a, b = mean[:, 0], mean[:, 1]
        paint = torch.stack(
            [a * torch.cos(turn) - b * torch.sin(turn), a * torch.sin(turn) + b * torch.cos(turn)],
            1,
        ) * sat
        if palettes:  # some regions take another photo's colours
            pal = palettes[int(rng.integers(len(palettes)))]
            other = torch.from_numpy(rng.random(n) < 0.1)
            picks = pal[torch.from_numpy(rng.integers(0, len(pal), n))]
            paint = torch.where(other[:, None], picks, paint)
        flat = paint[labels].permute(2, 0, 1)[None]
        return attach(L, upsample_chroma(flat, small[:, :1], L, str(draw(rng, UPSAMPLERS))))

    return colorize
