"""The exported graphs: thin torch wrappers around `imgcheck.trainer.pipeline`.

Each wrapper takes exactly what the runtime has in hand (uint8 RGB, NHWC, as numpy gets it from
PIL) and does the rest inside the graph: uint8 -> float [0, 1] NCHW, the colour conversion, the
network, and for the colorizer the return trip to uint8 NHWC. Nothing here re-implements the
pipeline: `colorize_full` and `detect` are called as they are, so training, evaluation and
the ONNX models share one definition.

Shape constraints of the exported graphs (both: any batch N >= 1):
- colorizer: any H, W >= 1. L is resized to `work_size` x `work_size` (bilinear, antialiased
  when shrinking) before the U-Net, and ab is resized back to H x W, so the U-Net's
  multiple-of-16 rule applies to `work_size` only.
- detector: H, W >= `PatchDiscriminator.min_size` (32); the runtime feeds `ViewSpec` crops.
"""

from __future__ import annotations

import torch
from torch import nn

from imgcheck.trainer.nets import PatchDiscriminator, UNetColorizer
from imgcheck.trainer.pipeline import colorize_full, detect


def to_rgb01(image: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W) in [0, 1]."""
    return image.permute(0, 3, 1, 2).to(torch.float32) / 255.0


class ColorizerGraph(nn.Module):
    """`image` uint8 (N, H, W, 3) -> `colorized` uint8 (N, H, W, 3).

    `float_output=True` stops before quantisation and returns float32 (N, H, W, 3) in [0, 1]:
    the PyTorch reference for parity checks of the pre-rounding values.
    """

    def __init__(
        self, generator: UNetColorizer, work_size: int, float_output: bool = False
    ) -> None:
        super().__init__()
        if work_size < generator.multiple or work_size % generator.multiple:
            raise ValueError(
                f"work_size {work_size} must be a positive multiple of {generator.multiple}"
            )
        self.generator = generator
        self.work_size = int(work_size)
        self.float_output = float_output

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        rgb = colorize_full(self.generator, to_rgb01(image), self.work_size)
        if self.float_output:
            return rgb.permute(0, 2, 3, 1)
        # Round half to even (torch and ONNX Round agree), then clip: exact uint8.
        out = (rgb * 255.0).round().clamp(0.0, 255.0).to(torch.uint8)
        return out.permute(0, 2, 3, 1)


class DetectorGraph(nn.Module):
    """`image` uint8 (N, H, W, 3) -> `score` float32 (N,), `patch_map` float32 (N, h, w)."""

    def __init__(self, discriminator: PatchDiscriminator) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return detect(self.discriminator, to_rgb01(image))
