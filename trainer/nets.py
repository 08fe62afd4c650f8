"""The two networks: a U-Net colorizer (L -> ab) and a PatchGAN discriminator (Lab -> patch logits).

Both are fully convolutional, so the same weights run on training crops and, after export,
on any image size that is a multiple of `UNetColorizer.multiple` (the colorizer) or at least
`PatchDiscriminator.min_size` pixels (the discriminator / detector).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    """`head`: "bins" (Zhang et al. 2016: a distribution over quantized ab, decoded by an
    annealed mean at `temperature`, predicted at half the work size) or "regression" (tanh ab at
    full work size, scaled by `gain`).

    Both decode settings are chosen after training (`trainer.decode`), never learned. An MSE
    regression predicts E[ab | L]: the best PSNR, but muted wherever the colour is ambiguous.
    Scaling that mean by a gain g costs E|g m - ab|^2 = E|ab|^2 - (2g - g^2)|m|^2 when m is the
    true conditional mean, so any g < 2 still beats leaving the photo grey while g -> 2 restores
    the vividness the averaging took away; the chosen g is measured, not assumed.
    """

    base: int = 16
    depth: int = 4
    max_channels: int = 128
    head: str = "bins"
    temperature: float = 0.38
    gain: float = 1.0


def decode_setting(gcfg: Mapping[str, Any]) -> str:
    """The config field a generator's decode is tuned by after training (`trainer.decode`):
    "temperature" for the bins head, "gain" for the regression head."""
    return "temperature" if gcfg.get("head", ColorizerConfig.head) == "bins" else "gain"


def generator_config(cfg: Any) -> ColorizerConfig:
    """The generator's config from a run's `TrainConfig` (one mapping, for training and the zoo)."""
    return ColorizerConfig(
        base=cfg.g_base,
        depth=cfg.g_depth,
        max_channels=cfg.g_max_channels,
        head=cfg.g_head,
        temperature=cfg.g_temperature,
        gain=cfg.g_gain,
    )


AB_BIN = 10.0  # ab bin width (CIELAB units), as Zhang et al.
AB_BINS_PER_AXIS = 22  # centres -105 ... 105


def ab_bin_centres() -> torch.Tensor:
    """(Q, 2) normalised ab centres of the quantized ab grid, Q = 22 * 22 (a-major)."""
    c = (torch.arange(AB_BINS_PER_AXIS, dtype=torch.float32) - (AB_BINS_PER_AXIS - 1) / 2) * AB_BIN
    a, b = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1) / 110.0


def annealed_mean(
    logits: torch.Tensor, centres: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bin logits (N, Q, h, w) -> ab (N, 2, h, w): softmax(z / T) . centres (Zhang et al.
    2016). T = 1 is the distribution's mean, T -> 0 its mode; `centres` (Q, 2) set the units."""
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, centres.to(p.dtype))


class UNetColorizer(nn.Module):
    """U-Net: normalised L (N, 1, H, W) -> normalised ab (N, 2, H, W) (in [-gain, gain]).

    Down-sampling by strided conv, up-sampling by bilinear resize + conv (no transposed
    convs, so no checkerboard chroma). H and W must be multiples of `multiple`. With the bins
    head, `logits(L)` gives the (N, Q, H/2, W/2) ab-bin logits the training loss needs and
    `forward` their annealed-mean decode, bilinearly resized to (H, W).
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
        if cfg.head not in ("bins", "regression"):
            raise ValueError(f"unknown colorizer head {cfg.head!r}")
        # The bins head works at half resolution: the last up block is not built.
        top = 1 if cfg.head == "bins" else 0
        self.up = nn.ModuleList(
            _Block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(top, cfg.depth))
        )
        if cfg.head == "bins":
            centres = ab_bin_centres()
            self.register_buffer("centres", centres, persistent=False)
            self.head = nn.Conv2d(chans[1], centres.shape[0], 1)
        else:
            self.head = nn.Conv2d(chans[0], 2, 1)

    @property
    def multiple(self) -> int:
        return 2**self.cfg.depth

    def _features(self, L: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(L)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], dim=1))
        return x

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        """Bins head only: (N, Q, H/2, W/2) logits over `ab_bin_centres()`."""
        return self.head(self._features(L))

    def decode(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Annealed mean at logit resolution, resized to `size`."""
        ab = annealed_mean(logits, self.centres, self.cfg.temperature)
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)

    def forward(
        self, L: torch.Tensor, with_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """ab; with `with_logits`, (ab, bin logits or None), so DDP sees one forward."""
        if self.cfg.head == "bins":
            z = self.logits(L)
            ab = self.decode(z, L.shape[-2:])
        else:
            z, ab = None, torch.tanh(self.head(self._features(L))) * self.cfg.gain
        return (ab, z) if with_logits else ab


def frozen_generator(
    state: Mapping[str, torch.Tensor], gcfg: ColorizerConfig | Mapping[str, Any]
) -> UNetColorizer:
    """A generator snapshot ready to colorize: weights loaded, eval mode, no gradients."""
    cfg = gcfg if isinstance(gcfg, ColorizerConfig) else ColorizerConfig(**gcfg)
    G = UNetColorizer(cfg)
    G.load_state_dict(state)
    return G.eval().requires_grad_(False)


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
    parity_bound = 1e-4  # max |ONNX - torch| on the score that export accepts

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
