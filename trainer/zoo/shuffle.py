"""A U-Net colorizer with pixel-shuffle upsampling, in the manner of DeOldify's decoder.

Where `cnn` and `cnn_bins` predict chroma at 1/4 of their working size and our own U-Net
upsamples by transposed convolutions, this one predicts chroma at the full working size through
sub-pixel convolutions (PixelShuffle, Shi et al. 2016) with skip connections from a
three-stage encoder, trained with an L1 (Huber) loss. Sub-pixel decoders leave their own trace
(a 2 x 2 phase pattern in the predicted chroma), at the working sizes such colorizers render at
(256-512 px), and apps built on them expose a saturation slider: a chroma gain is drawn per call.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from imgcheck.trainer.zoo import ZooColorizer, ZooContext
from imgcheck.trainer.zoo._protocol import colorize_at_work_size, draw, fit_on_crops

STEPS = 400
CROP = 96
WORK_SIZES = (256, 320, 384, 512)
GAINS = (1.0, 1.0, 1.25, 1.5)


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    )


class ShuffleUp(nn.Module):
    """x2 by a sub-pixel convolution, then the encoder's skip of that size joined in."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(c_in, 4 * c_out, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.merge = _block(c_out + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([F.relu(self.shuffle(self.expand(x))), skip], 1))


class ShuffleColorizer(nn.Module):
    """L (N, 1, H, W) in [0, 100], H and W multiples of 8 -> ab (N, 2, H, W)."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = (width, 2 * width, 3 * width, 4 * width)
        self.enc = nn.ModuleList(
            [_block(1, w[0]), _block(w[0], w[1], 2), _block(w[1], w[2], 2), _block(w[2], w[3], 2)]
        )
        self.up = nn.ModuleList(
            [ShuffleUp(w[3], w[2], w[2]), ShuffleUp(w[2], w[1], w[1]), ShuffleUp(w[1], w[0], w[0])]
        )
        self.head = nn.Conv2d(w[0], 2, 1)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x, skips = L / 50.0 - 1.0, []
        for stage in self.enc:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x) * 60.0


def train_shuffle(photos: list[torch.Tensor], seed: int, steps: int = STEPS) -> ShuffleColorizer:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the initial weights: this family's own, whatever ran before
    net = ShuffleColorizer()

    def loss(lab: torch.Tensor) -> torch.Tensor:
        side = lab.shape[-1] // 8 * 8  # crops are multiples of 4; the net wants 8
        lab = lab[..., :side, :side]
        return F.smooth_l1_loss(net(lab[:, :1]), lab[:, 1:], beta=2.0)

    return fit_on_crops(net, photos, loss, gen, steps, lr=2e-3, crop=CROP)


def build(ctx: ZooContext) -> ZooColorizer | None:
    if not ctx.photos or min(min(p.shape[-2:]) for p in ctx.photos) < 16:
        return None
    net = train_shuffle(ctx.photos, ctx.seed, STEPS)

    def predict(L: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h, w = L.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8  # the net wants multiples of 8: pad, predict, crop
        ab = net(F.pad(L, (0, pw, 0, ph), mode="replicate"))[..., :h, :w]
        return ab * float(draw(rng, GAINS))

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return colorize_at_work_size(rgb, rng, WORK_SIZES, predict)

    return colorize
