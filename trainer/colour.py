"""sRGB <-> CIELAB (D65), the one place in imgcheck where colour math lives.

Training uses it on tensors, and `export/` traces the very same functions into the ONNX
graphs, so the runtime never re-implements colour conversion and cannot drift from training.
Only ops that export cleanly to ONNX are used (clamps, exp, log, matmul-free channel sums).

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


def _pow(x: torch.Tensor, p: float) -> torch.Tensor:
    """x ** p for x > 0, as exp(p log x).

    ONNX Runtime's Pow with a fractional exponent is a scalar std::pow per element; Exp and Log
    are vectorised. On (16, 3, 128, 128) tiles on 2 cores: 10.1 ms -> 3.5 ms at p = 2.4 and
    6.0 -> 4.0 ms at p = 1/3 (a scratch A/B), and these two powers were 16 % of the detector
    graph's time in ORT's profiler. Relative difference from pow: below 1e-6."""
    return torch.exp(p * torch.log(x))


_SRGB_KNEE = 0.04045  # where sRGB's decoding curve turns from linear to a power


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB's piecewise decoding curve, written without a select.

    The power branch is evaluated at max(x, knee) and the linear one at min(x, knee), and the
    two meet at the knee (to 1.6e-9: sRGB's constants make the curve continuous), so their sum
    minus the value at the knee is the curve on both sides. ONNX Runtime's Where is several
    times slower than the elementwise ops it replaces: with `_lab_f` below, the detector graph
    is 4.9 % faster (benchmarks/RESULTS.md), its scores within 1e-6."""
    rgb = rgb.clamp(0.0, 1.0)
    high = _pow((rgb.clamp_min(_SRGB_KNEE) + 0.055) / 1.055, 2.4)
    return high + (rgb.clamp_max(_SRGB_KNEE) - _SRGB_KNEE) / 12.92


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    lin = lin.clamp(0.0, 1.0)
    return torch.where(
        lin <= 0.0031308, lin * 12.92, 1.055 * _pow(lin.clamp_min(1e-8), 1 / 2.4) - 0.055
    )


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    """CIELAB's companding of a white-relative tristimulus: a cube root, linear near black.

    Without a select, like `srgb_to_linear`: the linear part is the cube root's tangent at
    delta^3, so cbrt(max(t, delta^3)) + (min(t, delta^3) - delta^3) / (3 delta^2) is the cube
    root above the knee and exactly t / (3 delta^2) + 4/29 below it."""
    knee = _DELTA**3
    return _pow(t.clamp_min(knee), 1.0 / 3.0) + (t.clamp_max(knee) - knee) / (3 * _DELTA**2)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab with L in [0, 100]."""
    xyz = _mix(srgb_to_linear(rgb), _RGB_TO_XYZ)
    white = torch.tensor(_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    fx, fy, fz = _lab_f(xyz / white).unbind(dim=-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_linear(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> linear sRGB, not clamped: outside [0, 1] means out of gamut."""
    L, a, b = lab.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    t = torch.where(f > _DELTA, f * f * f, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    white = torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return _mix(t * white, _XYZ_TO_RGB)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> (..., 3, H, W) sRGB clamped to [0, 1]."""
    return linear_to_srgb(lab_to_linear(lab))


def fit_to_gamut(L: torch.Tensor, ab: torch.Tensor, steps: int = 6) -> torch.Tensor:
    """Scale each pixel's chroma toward grey until (L, s * ab) is inside the sRGB gamut.

    A per-channel clamp of an out-of-gamut colour changes its hue: that is where the purple and
    green halos in dark and saturated regions come from. Keeping the hue and giving up chroma is
    what a colour-managed renderer does. `s` is found by bisection (unrolled `steps` times, so
    it traces into ONNX as plain elementwise ops); grey (s = 0) is always in gamut.
    """

    def inside(scale: torch.Tensor) -> torch.Tensor:
        rgb = lab_to_linear(torch.cat([L, ab * scale], dim=-3))
        ok = (rgb >= -1e-3) & (rgb <= 1.0 + 1e-3)
        return ok.all(dim=-3, keepdim=True)

    one = torch.ones_like(L)
    lo, hi = torch.zeros_like(L), one
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        ok = inside(mid)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return ab * torch.where(inside(one), one, lo)


def rgb_to_luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB -> (..., 1, H, W) CIELAB L in [0, 100]: how the colorizer greys a photo.

    The L channel of `rgb_to_lab`, computed from Y alone (L depends on nothing else, and Y's
    white is 1): at full resolution that is one cube root per pixel instead of three."""
    return 116.0 * _lab_f(_mix(srgb_to_linear(rgb), _RGB_TO_XYZ[1:2])) - 16.0


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


def delta_e2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference (kL = kC = kH = 1) of (..., 3, H, W) Lab tensors -> (..., H, W).

    Used to score colorizers in a perceptually uniform unit (about 1 = just noticeable), which
    plain ab L1/L2 is not. Follows Sharma, Wu & Dalal (2005) "The CIEDE2000 Color-Difference
    Formula: Implementation Notes", including their conventions for zero chroma (hue 0, hue
    difference 0, mean hue = sum of hues) and the hue-mean branch at |h1 - h2| > 180 degrees.
    """
    L1, a1, b1 = lab1.unbind(dim=-3)
    L2, a2, b2 = lab2.unbind(dim=-3)
    pow25_7 = 25.0**7
    c_bar = 0.5 * (torch.sqrt(a1 * a1 + b1 * b1) + torch.sqrt(a2 * a2 + b2 * b2))
    c_bar7 = c_bar.pow(7)
    g = 0.5 * (1.0 - torch.sqrt(c_bar7 / (c_bar7 + pow25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p = torch.sqrt(a1p * a1p + b1 * b1)
    c2p = torch.sqrt(a2p * a2p + b2 * b2)
    # atan2(0, 0) = 0 in torch, which is Sharma's convention for achromatic colours.
    h1p = torch.remainder(torch.rad2deg(torch.atan2(b1, a1p)), 360.0)
    h2p = torch.remainder(torch.rad2deg(torch.atan2(b2, a2p)), 360.0)
    chroma_zero = (c1p * c2p) == 0

    dLp = L2 - L1
    dCp = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(chroma_zero, torch.zeros_like(dh), dh)
    dHp = 2.0 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2.0)

    Lp_bar = 0.5 * (L1 + L2)
    Cp_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    hp_bar = torch.where(
        (h1p - h2p).abs() <= 180.0,
        0.5 * h_sum,
        torch.where(h_sum < 360.0, 0.5 * (h_sum + 360.0), 0.5 * (h_sum - 360.0)),
    )
    hp_bar = torch.where(chroma_zero, h_sum, hp_bar)

    def _cos(deg: torch.Tensor) -> torch.Tensor:
        return torch.cos(torch.deg2rad(deg))

    t = (
        1.0
        - 0.17 * _cos(hp_bar - 30.0)
        + 0.24 * _cos(2.0 * hp_bar)
        + 0.32 * _cos(3.0 * hp_bar + 6.0)
        - 0.20 * _cos(4.0 * hp_bar - 63.0)
    )
    d_theta = 30.0 * torch.exp(-(((hp_bar - 275.0) / 25.0) ** 2))
    cp_bar7 = Cp_bar.pow(7)
    r_c = 2.0 * torch.sqrt(cp_bar7 / (cp_bar7 + pow25_7))
    l50 = (Lp_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / torch.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * Cp_bar
    s_h = 1.0 + 0.015 * Cp_bar * t
    r_t = -torch.sin(torch.deg2rad(2.0 * d_theta)) * r_c
    tl, tc, th = dLp / s_l, dCp / s_c, dHp / s_h
    return torch.sqrt((tl * tl + tc * tc + th * th + r_t * tc * th).clamp_min(0.0))
