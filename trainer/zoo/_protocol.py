"""What nearly every colorizer shares: grey to L, predict ab at a working size, stretch it back.

The zoo's families differ in *how* they guess ab; this module is the part they share, with the
choices real colorizers differ in drawn per call: the working size (96-512 px on the long side)
and the upsampler that stretches chroma over full-resolution L (bilinear, bicubic, nearest +
blur, or edge-aware guided). Different upsamplers and chroma resolutions leave different
traces, so a detector must not learn one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import lab_to_rgb, rgb_to_lab
from imgcheck.trainer.guided import guided_upsample

UPSAMPLERS = ("bilinear", "bicubic", "nearest_blur", "guided")
WORK_SIZES = (96, 128, 192, 256, 384, 512)


def lab_of(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> Lab (L in [0, 100])."""
    return rgb_to_lab(rgb.float())


def work_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    """Aspect-preserving working size with the given long side (never above the image)."""
    scale = min(1.0, long_side / max(h, w))
    return max(8, round(h * scale)), max(8, round(w * scale))


def down(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def upsample_chroma(
    ab_small: torch.Tensor, L_small: torch.Tensor, L_full: torch.Tensor, how: str
) -> torch.Tensor:
    """Stretch work-resolution ab over the full-resolution L by one of `UPSAMPLERS`."""
    size = L_full.shape[-2:]
    if how == "bilinear":
        return F.interpolate(ab_small, size=size, mode="bilinear", align_corners=False)
    if how == "bicubic":
        return F.interpolate(ab_small, size=size, mode="bicubic", align_corners=False)
    if how == "nearest_blur":
        up = F.interpolate(ab_small, size=size, mode="nearest")
        k = max(3, 2 * (size[0] // max(1, ab_small.shape[-2])) + 1)
        return F.avg_pool2d(up, k, stride=1, padding=k // 2, count_include_pad=False)
    if how == "guided":
        return guided_upsample(L_small / 100.0, ab_small, L_full / 100.0)
    raise ValueError(f"unknown upsampler {how!r}")


def attach(L_full: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return lab_to_rgb(torch.cat([L_full, ab], dim=1))


def draw(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


Net = TypeVar("Net", bound=torch.nn.Module)


def fit_on_crops(
    net: Net,
    photos: list[torch.Tensor],
    loss: Callable[[torch.Tensor], torch.Tensor],
    gen: torch.Generator,
    steps: int,
    lr: float,
    crop: int,
) -> Net:
    """Train one of the zoo's in-run networks (`cnn`, `cnn_bins`, `shuffle`): Adam on
    `loss(lab_batch)` over `random_crops` of the photos' Lab (crops of `crop` px at most, a
    multiple of 4; `shuffle` trims its own to 8); returned frozen, in eval mode."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    side = min(crop, min(min(p.shape[-2:]) for p in photos)) // 4 * 4
    labs = [lab_of(p[None]) for p in photos]
    for _ in range(steps):
        value = loss(random_crops(labs, side, gen))
        opt.zero_grad()
        value.backward()
        opt.step()
    return net.eval().requires_grad_(False)


def random_crops(
    labs: list[torch.Tensor], side: int, gen: torch.Generator, n: int = 16
) -> torch.Tensor:
    """`n` random `side`-px crops of (1, 3, H, W) Lab photos: a training batch for the zoo's
    in-run networks (`cnn`, `cnn_bins`, `shuffle`)."""
    batch = []
    for i in torch.randint(len(labs), (n,), generator=gen).tolist():
        lab = labs[i]
        h, w = lab.shape[-2:]
        y = int(torch.randint(h - side + 1, (1,), generator=gen))
        x = int(torch.randint(w - side + 1, (1,), generator=gen))
        batch.append(lab[..., y : y + side, x : x + side])
    return torch.cat(batch)


def colorize_at_work_size(
    rgb: torch.Tensor,
    rng: np.random.Generator,
    sizes: tuple[int, ...],
    predict: Callable[[torch.Tensor, np.random.Generator], torch.Tensor],
) -> torch.Tensor:
    """The common path of a network colorizer: L at a drawn working size (a multiple of 4,
    >= 16), `predict(L_small, rng)` -> ab at any lower resolution, stretched over the
    full-resolution L by a drawn upsampler. Draws in that order: size, `predict`'s, upsampler."""
    L = lab_of(rgb)[:, :1]
    size = work_shape(*L.shape[-2:], int(draw(rng, sizes)))
    size = (max(16, size[0] // 4 * 4), max(16, size[1] // 4 * 4))
    ab = predict(down(L, size), rng)
    L_grid = down(L, ab.shape[-2:])
    return attach(L, upsample_chroma(ab, L_grid, L, str(draw(rng, UPSAMPLERS))))
