"""sRGB <-> CIELAB (D65), the one place in imgcheck where colour math lives.

Training uses it on tensors, and `export/` traces the very same functions into the ONNX
graphs, so the runtime never re-implements colour conversion and cannot drift from training.
Only ops that export cleanly to ONNX are used (where, pow, matmul-free channel sums).

Normalisation follows pix2pix: L in [0, 100] -> L/50 - 1, a/b in about [-110, 110] -> /110.
"""

from __future__ import annotations

import torch

# sRGB (linear) -> XYZ, D65, and its inverse; rows are output channels.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_XYZ_TO_RGB = (
    (3.240479, -1.537150, -0.498535),
    (-0.969256, 1.875992, 0.041556),
    (0.055648, -0.204043, 1.057311),
)
_WHITE = (0.950456, 1.0, 1.088754)
_DELTA = 6.0 / 29.0
L_SCALE, L_SHIFT, AB_SCALE = 50.0, 1.0, 110.0


def _mix(x: torch.Tensor, m: tuple[tuple[float, float, float], ...]) -> torch.Tensor:
    """Apply a 3x3 colour matrix over the channel axis (dim -3) of an (..., 3, H, W) tensor."""
    c0, c1, c2 = x.unbind(dim=-3)
    return torch.stack([r[0] * c0 + r[1] * c1 + r[2] * c2 for r in m], dim=-3)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    rgb = rgb.clamp(0.0, 1.0)
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).pow(2.4))


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    lin = lin.clamp(0.0, 1.0)
    return torch.where(
        lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp_min(1e-8).pow(1 / 2.4) - 0.055
    )


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab with L in [0, 100]."""
    xyz = _mix(srgb_to_linear(rgb), _RGB_TO_XYZ)
    white = torch.tensor(_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    t = xyz / white
    f = torch.where(
        t > _DELTA**3, t.clamp_min(1e-8).pow(1.0 / 3.0), t / (3 * _DELTA**2) + 4.0 / 29.0
    )
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> (..., 3, H, W) sRGB clamped to [0, 1]."""
    L, a, b = lab.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    t = torch.where(f > _DELTA, f.pow(3), 3 * _DELTA**2 * (f - 4.0 / 29.0))
    white = torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return linear_to_srgb(_mix(t * white, _XYZ_TO_RGB))


def rgb_to_luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB -> (..., 1, H, W) CIELAB L in [0, 100]: how the colorizer greys a photo."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    return L / L_SCALE - L_SHIFT


def denormalize_l(Ln: torch.Tensor) -> torch.Tensor:
    return (Ln + L_SHIFT) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(abn: torch.Tensor) -> torch.Tensor:
    return abn * AB_SCALE


def rgb_to_lab_normalized(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB -> Lab scaled to about [-1, 1] per channel: what both networks see."""
    lab = rgb_to_lab(rgb)
    return torch.cat([normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])], dim=-3)


def lab_normalized_to_rgb(Ln: torch.Tensor, abn: torch.Tensor) -> torch.Tensor:
    """Normalised L (..., 1, H, W) and ab (..., 2, H, W) -> sRGB in [0, 1]."""
    return lab_to_rgb(torch.cat([denormalize_l(Ln), denormalize_ab(abn)], dim=-3))
