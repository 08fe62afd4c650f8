"""A regression CNN of another design than ours, trained in the run in a few CPU minutes.

No U-Net and no skip connections: a stride-4 stem, a stack of dilated 3x3 convolutions, MSE
loss (the classic "brown" regression colorizer), chroma predicted at 1/4 of its working size
and stretched by a drawn upsampler. Its working size is drawn per call, so its fakes carry
chroma at several resolutions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import colorize_at_work_size, fit_on_crops

STEPS = 500
CROP = 96


class DilatedColorizer(nn.Module):
    """L (N, 1, H, W) in [0, 100] -> ab (N, 2, H/4, W/4)."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, width, 4, stride=4),
            nn.ReLU(True),
        ]
        for d in (1, 2, 4, 8, 1):
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.ReLU(True)]
        layers.append(nn.Conv2d(width, 2, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.body(L / 50.0 - 1.0) * 60.0


def train_cnn(photos: list[torch.Tensor], seed: int, steps: int = STEPS) -> DilatedColorizer:
    gen = torch.Generator().manual_seed(seed)
    net = DilatedColorizer()

    def loss(lab: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(net(lab[:, :1]), F.avg_pool2d(lab[:, 1:], 4))

    return fit_on_crops(net, photos, loss, gen, steps, lr=1e-3, crop=CROP)


def build(ctx: ZooContext) -> ZooColorizer | None:
    if not ctx.photos or min(min(p.shape[-2:]) for p in ctx.photos) < 16:
        return None
    net = train_cnn(ctx.photos, ctx.seed)

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return colorize_at_work_size(rgb, rng, (128, 192, 256, 384, 512), lambda L, _: net(L))

    return colorize
