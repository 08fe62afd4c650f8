"""The two networks: a U-Net colorizer (L -> ab) and a PatchGAN discriminator (Lab -> patch logits).

Both are fully convolutional, so the same weights run on training crops and, after export,
on any image size that is a multiple of `UNetColorizer.multiple` (the colorizer) or at least
`PatchDiscriminator.min_size` pixels (the discriminator / detector).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: small CPU batches, DDP without SyncBN, and identical
    # behaviour in train and eval mode (so ONNX parity does not depend on running stats).
    return nn.GroupNorm(min(8, channels), channels)


class _Block(nn.Module):
    """Two 3x3 convs with norm and activation: the unit of both U-Net paths."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            _norm(cout),
            nn.SiLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            _norm(cout),
            nn.SiLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@dataclass(frozen=True)
class ColorizerConfig:
    base: int = 16
    depth: int = 4
    max_channels: int = 128


class UNetColorizer(nn.Module):
    """U-Net: normalised L (N, 1, H, W) -> normalised ab (N, 2, H, W) in [-1, 1].

    Down-sampling by strided conv, up-sampling by bilinear resize + conv (no transposed
    convs, so no checkerboard chroma). H and W must be multiples of `multiple`.
    """

    def __init__(self, cfg: ColorizerConfig = ColorizerConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [min(cfg.base * 2**i, cfg.max_channels) for i in range(cfg.depth + 1)]
        self.stem = _Block(1, chans[0])
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chans[i], chans[i], 3, stride=2, padding=1),
                _Block(chans[i], chans[i + 1]),
            )
            for i in range(cfg.depth)
        )
        self.up = nn.ModuleList(
            _Block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(cfg.depth))
        )
        self.head = nn.Conv2d(chans[0], 2, 1)

    @property
    def multiple(self) -> int:
        return 2**self.cfg.depth

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(L)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], dim=1))
        return torch.tanh(self.head(x))


@dataclass(frozen=True)
class DiscriminatorConfig:
    base: int = 32
    layers: int = 3


class PatchDiscriminator(nn.Module):
    """PatchGAN: normalised Lab (N, 3, H, W) -> patch logits (N, 1, h, w).

    Positive logit = "colorized". The image score is the mean patch logit (`image_logit`),
    so the same network is the GAN critic and, after the classifier phase, the detector.
    """

    min_size = 32

    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [
            nn.Conv2d(3, cfg.base, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        c = cfg.base
        for i in range(1, cfg.layers + 1):
            stride = 2 if i < cfg.layers else 1
            cout = min(cfg.base * 2**i, cfg.base * 8)
            layers += [
                nn.Conv2d(c, cout, 4, stride=stride, padding=1, bias=False),
                _norm(cout),
                nn.LeakyReLU(0.2, True),
            ]
            c = cout
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return self.body(lab)

    @staticmethod
    def image_logit(patch_logits: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) patch logits -> (N,) image logit."""
        return patch_logits.mean(dim=(1, 2, 3))
