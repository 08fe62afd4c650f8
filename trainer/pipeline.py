"""The deployed forward passes, written once and used by training, evaluation and ONNX export.

`colorize_full` is exactly what `imgcheck colorize` runs (export traces it into the colorizer
graph), and `detect` is exactly what `imgcheck scan` runs on each view crop (traced into the
detector graph). The classifier phase makes its fakes with `colorize_full`, so the detector
learns the artefacts of the shipped colorizer, not of a training-only shortcut.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import (
    denormalize_ab,
    fit_to_gamut,
    lab_to_rgb,
    normalize_l,
    rgb_to_lab_normalized,
    rgb_to_luminance,
)
from imgcheck.trainer.detector_head import ForensicDetector
from imgcheck.trainer.guided import guided_upsample
from imgcheck.trainer.nets import PatchDiscriminator, UNetColorizer


def colorize_full(generator: UNetColorizer, rgb: torch.Tensor, work_size: int) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] (colour or grey) -> colorized (N, 3, H, W) in [0, 1].

    The photo is greyed to CIELAB L at full resolution; the generator predicts ab on a
    `work_size` x `work_size` resize of L; ab is pulled into the sRGB gamut for its L (no hue
    shifts from clamping), then upsampled guided by the full-resolution L (edge-aware: no colour
    bleeding across strong luminance edges) and re-attached to it, so the output keeps the
    input's size and sharpness.
    """
    L = rgb_to_luminance(rgb)
    small = F.interpolate(
        L, size=(work_size, work_size), mode="bilinear", align_corners=False, antialias=True
    )
    ab = fit_to_gamut(small, denormalize_ab(generator(normalize_l(small))))
    ab = guided_upsample(small / 100.0, ab, L / 100.0)
    return lab_to_rgb(torch.cat([L, ab], dim=1))


def detect(
    discriminator: PatchDiscriminator | ForensicDetector, rgb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) sRGB in [0, 1] -> (score (N,), patch_map (N, h, w)), both probabilities of "colorized".

    The forensic detector scores each view tile as a whole (its patch map is 1 x 1 per tile:
    the tiles themselves cover the image, so scan's heatmap is the map of tile scores); the
    PatchGAN (0.1) scores overlapping patches and averages their logits.
    """
    if isinstance(discriminator, ForensicDetector):
        score = torch.sigmoid(discriminator(rgb))
        return score, score[:, None, None]
    logits = discriminator(rgb_to_lab_normalized(rgb))
    return torch.sigmoid(PatchDiscriminator.image_logit(logits)), torch.sigmoid(logits[:, 0])


__all__ = ["colorize_full", "detect"]
