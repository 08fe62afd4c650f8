"""Global tints and gradient maps: ab as a function of L alone, at full resolution.

Hand tinting, "colorize" sliders and phone-app filters: a constant cast (sepia, cyanotype,
any hue) or a gradient map whose curve L -> ab is taken from a reference photo (its mean ab
per L band). The chroma has full resolution but no detail of its own: every chroma edge is a
luminance edge, exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import attach, lab_of

BANDS = 16


def _curves(photos: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per reference photo: (BANDS, 2) mean ab per L band (empty bands interpolated)."""
    out = []
    for p in photos:
        lab = lab_of(p[None])[0]
        band = (lab[0] / 100 * BANDS).long().clamp(0, BANDS - 1).flatten()
        cnt = torch.bincount(band, minlength=BANDS).float()
        ab = torch.stack(
            [torch.bincount(band, weights=lab[c].flatten(), minlength=BANDS) for c in (1, 2)], 1
        )
        mean = ab / cnt.clamp_min(1)[:, None]
        ok = cnt > 20
        if ok.sum() < 2:
            continue
        idx = torch.arange(BANDS, dtype=torch.float32)
        good = idx[ok]
        for c in range(2):
            mean[:, c] = torch.from_numpy(
                np.interp(idx.numpy(), good.numpy(), mean[ok, c].numpy())
            ).float()
        out.append(mean)
    return out


def build(ctx: ZooContext) -> ZooColorizer:
    curves = _curves(ctx.photos[:64])

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        L = lab_of(rgb)[:, :1]
        if rng.random() < 0.4 or not curves:  # a constant cast, fading toward black and white
            hue = rng.uniform(0, 2 * math.pi)
            chroma = rng.uniform(8, 35)
            t = L / 100.0
            fade = 4 * t * (1 - t)
            ab = torch.cat([chroma * math.cos(hue) * fade, chroma * math.sin(hue) * fade], 1)
        else:
            curve = curves[int(rng.integers(len(curves)))] * float(rng.uniform(1.0, 2.0))
            pos = (L / 100 * BANDS - 0.5).clamp(0, BANDS - 1)
            lo = pos.floor().long().clamp_max(BANDS - 2)
            w = pos - lo
            ab = torch.cat([(1 - w) * curve[lo, c] + w * curve[lo + 1, c] for c in range(2)], dim=1)
        return attach(L, ab)

    return colorize
