"""The local linear model of chroma given luminance (He et al., "Guided Image Filtering"), once.

Within a small window, `ab ≈ A · L + B`. Two parts of imgcheck need this model and both take it
from here, so it has one definition and traces into ONNX as average pools and elementwise ops:

- the colorizer upsamples its work-resolution chroma to full resolution with it (a fast guided
  upsampling: A and B are fitted at work resolution and applied to full-resolution L), so colour
  follows luminance edges instead of bleeding across them;
- the detector's forensic features measure how well the model explains an image's chroma: a
  colorizer derives chroma from luminance, a camera records it.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows clipped at the border (no zero padding bias)."""
    k = 2 * radius + 1
    return F.avg_pool2d(x, k, stride=1, padding=radius, count_include_pad=False)


def box_valid(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows that fit inside the map (output smaller by 2r per side).

    For statistics over a tile, where the border needs no value of its own. One k x k
    AveragePool: in ONNX Runtime on 2 cores it measured 3-4x faster than running sums (CumSum +
    Slice, this function's formulation before 2026-12-01) and 2x faster than two 1-D pools
    (`benchmarks/bench_box.py`), and it sums only k^2 values per output, so float32 rounding
    stays at ~1e-7 whatever the map's offset.
    """
    return F.avg_pool2d(x, 2 * radius + 1, stride=1)


def centre(x: torch.Tensor) -> torch.Tensor:
    """Each map minus its own mean: what the forensic window statistics are computed on.

    A window variance is a difference of two means (E[x^2] - E[x]^2), which cancels badly in
    float32 when x sits far from 0; centring keeps both terms small. Window variances,
    covariances, fit residuals and high-pass energies do not change when a constant is
    subtracted, so centring changes no feature, only the rounding.
    """
    return x - x.mean(dim=(-1, -2), keepdim=True)


def crop_border(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The centre of a map that `box_valid` with `radius` gives values for."""
    return x[..., radius:-radius, radius:-radius] if radius else x


def linear_coefficients(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, valid: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-window least-squares fit src ≈ A · guide + B (ridge `eps` on A).

    guide (N, 1, H, W), src (N, C, H, W) -> A, B (N, C, H, W) and the guide's window variance;
    with `valid`, only for the windows inside the map (H - 2r, W - 2r), see `box_valid`.
    """
    f = box_valid if valid else box
    mean_g = f(guide, radius)
    mean_s = f(src, radius)
    var_g = (f(guide * guide, radius) - mean_g * mean_g).clamp_min(0.0)
    cov = f(guide * src, radius) - mean_g * mean_s
    A = cov / (var_g + eps)
    return A, mean_s - A * mean_g, var_g


def guided_upsample(
    guide_small: torch.Tensor,
    src_small: torch.Tensor,
    guide_full: torch.Tensor,
    radius: int = 2,
    eps: float = 4e-3,
) -> torch.Tensor:
    """Fast guided upsampling: fit A, B at low resolution, smooth, resize, apply to full-res guide.

    Guides are in [0, 1] (L / 100), so `eps` is a variance on that scale: edges with an L
    contrast well above sqrt(eps) * 100 carry chroma edges; flatter windows get plain smoothing.
    """
    A, B, _ = linear_coefficients(guide_small, src_small, radius, eps)
    A, B = box(A, radius), box(B, radius)
    size = guide_full.shape[-2:]
    A = F.interpolate(A, size=size, mode="bilinear", align_corners=False)
    B = F.interpolate(B, size=size, mode="bilinear", align_corners=False)
    return A * guide_full + B
