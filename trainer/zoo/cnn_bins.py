"""A classification colorizer (Zhang et al. 2016 style), trained in the run in a few CPU minutes.

Where `cnn` regresses ab with MSE and averages ambiguous colours into brown, this one predicts a
distribution over the 22 x 22 quantized ab bins with class rebalancing (`trainer.bins`, the
loss our own bins head trains on) and decodes it by an annealed mean at a drawn temperature
(0.38 as in the paper, up to the plain mean): colours it commits to, saturated and banded where
a regression is muted. Encoder-decoder rather than dilated (two stride-2 stages, a residual
middle), chroma at 1/4 of its working size, stretched by a drawn upsampler.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imgcheck.trainer.bins import ab_prior_weights, bins_loss
from imgcheck.trainer.nets import ab_bin_centres, annealed_mean
from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import colorize_at_work_size, draw, fit_on_crops

STEPS = 400
CROP = 96
TEMPERATURES = (0.38, 0.5, 0.7, 1.0)


class BinsColorizer(nn.Module):
    """L (N, 1, H, W) in [0, 100] -> ab-bin logits (N, Q, H/4, W/4)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, stride=2, padding=1),
            nn.ReLU(True),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.ReLU(True),
        )
        self.middle = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, 3, padding=d, dilation=d),
                nn.BatchNorm2d(width),
                nn.ReLU(True),
            )
            for d in (1, 2, 4, 2)
        )
        self.head = nn.Conv2d(width, ab_bin_centres().shape[0], 1)
        self.register_buffer("centres", ab_bin_centres() * 110.0)

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        x = self.stem(L / 50.0 - 1.0)
        for block in self.middle:
            x = x + block(x)
        return self.head(x)

    def decode(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """Annealed mean in ab units (`nets.annealed_mean`)."""
        return annealed_mean(logits, self.centres, temperature)


def train_bins(photos: list[torch.Tensor], seed: int, steps: int = 400) -> BinsColorizer:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = BinsColorizer()
    weights = ab_prior_weights(photos)

    def loss(lab: torch.Tensor) -> torch.Tensor:
        return bins_loss(net.logits(lab[:, :1]), lab[:, 1:] / 110.0, weights)

    return fit_on_crops(net, photos, loss, gen, steps, lr=2e-3, crop=CROP)


def build(ctx: ZooContext) -> ZooColorizer | None:
    if not ctx.photos or min(min(p.shape[-2:]) for p in ctx.photos) < 16:
        return None
    net = train_bins(ctx.photos, ctx.seed + 1, STEPS)

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        def predict(L: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
            return net.decode(net.logits(L), float(draw(rng, TEMPERATURES)))

        return colorize_at_work_size(rgb, rng, (128, 192, 224, 256, 384, 512), predict)

    return colorize
