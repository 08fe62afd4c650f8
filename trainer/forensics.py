"""Forensic features of one detector tile: the one definition, traced into the detector graph.

A colorizer invents chroma from luminance, usually at a working size well below the image's,
then stretches it over the full-resolution L. What that leaves, and what these features
measure per tile (each a mean over the tile, so a tile gives one vector of `FEATURES`):

- **local L -> ab fit** (guided-filter model, `trainer.guided`): how much of the chroma a
  per-window affine function of L explains. Chroma derived from L is explained far better than
  chroma a sensor recorded; a noisy exemplar transfer is explained far *worse*.
- **chroma band limit**: high-frequency chroma energy, alone and relative to luminance, at
  scales 1, 2 and 4 px. Working-resolution chroma has none below its scale.
- **chroma gradients where L is flat**: cameras record colour edges inside flat-luminance
  regions; derived chroma can only change where L does (or, for propagation, nowhere).
- **cross-channel high-pass correlation** of R, G, B: demosaicing and sensor noise decorrelate
  the channels' finest detail; L-derived colour leaves them locked together.
- **global colour statistics**: chroma level and spread, hue concentration, saturated share,
  and the luminance context the other numbers depend on.
- **edge alignment** at scales 2, 4 and 8 px: the normalised |<grad L, grad ab>| of the tile.
  Chroma derived from L changes exactly where L does; true chroma displaced by a few pixels (or
  re-attached after a shift or a resampling) changes beside the luminance edge instead.
- **L-curve fit** at scale 4: how much of the tile's chroma one piecewise-linear function of
  L explains (a tone curve per channel, `_lcurve`). A tint, a gradient map or a LUT makes ab a
  global function of L, which the local affine fit and the L-ab correlation miss when the map
  is curved (a duotone's ends differ in hue); a camera's colour is no function of L at all.

Everything is computed with average pools, elementwise ops and (the L-curve) MatMuls, so it exports to ONNX inside
the detector graph and training, calibration and scan share these exact numbers. The features
are deliberately two-sided: the detector's one-class term scores distance from real photos'
statistics in either direction (`trainer.detector_head`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import rgb_to_lab
from imgcheck.trainer.guided import box_valid, centre, crop_border, linear_coefficients

SCALES = (1, 2, 4, 8)
_PER_SCALE = (
    "fit_resid",  # log mean residual of the local affine L->ab fit
    "fit_ratio",  # ... relative to the chroma's own window variance
    "hf_ab",  # log high-frequency chroma energy
    "hf_ratio",  # ... relative to high-frequency luminance energy
    "flat_grad",  # log chroma gradient energy where L is flat
    "edge_coupling",  # log chroma gradient energy at luminance edges, relative to theirs
)
_GLOBAL = (
    "hp_corr_rg",
    "hp_corr_gb",
    "hp_corr_rb",
    "chroma_mean",
    "chroma_std",
    "hue_spread",
    "hue_axis_cos",  # which axis of the colour wheel the chroma lies along (second harmonic)
    "hue_axis_sin",
    "saturated",
    "l_mean",
    "l_std",
    "a_mean",
    "b_mean",
    "l_a_corr",
    "l_b_corr",
)
ALIGN_SCALES = (2, 4, 8)
# Edge alignment of a tile with hardly any gradient energy is shrunk toward ALIGN_NEUTRAL, about
# the median over real training tiles (0.78, 0.84, 0.88 at scales 2, 4, 8; 948 tiles of 80
# photos). ALIGN_SHRINK is in the units of sqrt(|grad L|^2 |grad ab|^2), below the 5th
# percentile of real tiles' (5.7e-4, 1.1e-3, 1.4e-3): textured tiles keep their own value.
ALIGN_NEUTRAL = 0.8
ALIGN_SHRINK = 1e-4
# The L-curve: ab fitted per tile as a piecewise-linear function of L with LCURVE_KNOTS evenly
# spaced knots over L/100 in [0, 1], at LCURVE_SCALE (a 128-px view tile gives 32 x 32 px).
# A probe on 60 validation photos (round 2, stop 35) separated gradient-map tints from real
# photos at 0.946 with the scale-4 residual alone, where `l_a_corr` gave 0.539 (scales 1 and
# 2 added nothing the scale-4 pair lacks).
LCURVE_KNOTS = 16
LCURVE_SCALE = 4
FEATURES: tuple[str, ...] = (
    tuple(f"{name}@{s}" for s in SCALES for name in _PER_SCALE)
    + _GLOBAL
    + tuple(f"edge_align@{s}" for s in ALIGN_SCALES)
    + (f"lcurve_resid@{LCURVE_SCALE}", f"lcurve_ratio@{LCURVE_SCALE}")
)
# A tile with neither luminance texture nor colour (a white or black product background, a
# blown-out sky) holds no evidence either way, yet its features sit at extremes the head never
# saw on real tiles, so it scores whatever the head extrapolates to: run v16's head gave a white
# tile 0.27 in torch ("real", so a small colorized product on a wide margin was never caught)
# and 0.74 in its graph (which had lost eps, see `_plus_tiny`). The head gates such tiles toward
# a neutral logit (`detector_head`), by this weight: 1 - exp(-(h / s)^2) with
# h = hypot(l_std, chroma_mean) in L/100 units and s = CONTENT_SCALE. Over 60 real photos'
# 1,500 view tiles h had its 1st percentile at 0.063, where the weight is 1.0000: real content is
# never gated; a flat white JPEG tile (h < 0.005) gets < 0.06.
CONTENT_SCALE = 0.02
# Which features are "forensic" (the ablation switches these off, leaving colour statistics).
FORENSIC = tuple(f for f in FEATURES if "@" in f or f.startswith("hp_corr"))


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(-1, -2)).mean(dim=-1)  # (N, C, H, W) -> (N,)


def content_weight(
    feats: torch.Tensor, rate: float | torch.Tensor = CONTENT_SCALE**-2
) -> torch.Tensor:
    """(N, len(FEATURES)) raw tile features -> (N,) weight in [0, 1]: how much the tile shows.

    From two features already computed (`l_std`, and `chroma_mean`, stored as log(c + 1e-3)),
    so training, which works on stored features, and the graph compute the same number.
    `rate` is 1 / CONTENT_SCALE^2 (a multiplier, so a graph keeps it as a named constant)."""
    l_std = feats[:, FEATURES.index("l_std")]
    chroma = (torch.exp(feats[:, FEATURES.index("chroma_mean")]) - 1e-3).clamp_min(0.0)
    return 1.0 - torch.exp(-(l_std * l_std + chroma * chroma) * rate)


def _log(x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.log(x + eps)


def _plus_tiny(x: torch.Tensor, eps: float) -> torch.Tensor:
    """(x + eps) / eps, written as x / eps + 1: the way to add an eps of 1e-8 or less.

    The ONNX export's optimiser takes an added constant within 1e-8 of zero for zero (numpy's
    allclose tolerance) and drops it. The graph then computed 0/0 on flat tiles where training
    saw 0/eps (`edge_coupling` read 0 instead of -13.8, and was 1,000x off at scale 8 on a
    near-white tile: measured in round 2, stop 19), so the callers scale back by eps instead."""
    return x * (1.0 / eps) + 1.0


def _hp(x: torch.Tensor) -> torch.Tensor:
    """High-pass: the map minus its 3x3 mean (valid windows only)."""
    return crop_border(x, 1) - box_valid(x, 1)


def _scale_features(L: torch.Tensor, ab: torch.Tensor) -> list[torch.Tensor]:
    """L (N,1,h,w) in [0, 1], ab (N,2,h,w) in about [-1, 1] at one scale -> 6 (N,) features.

    Every feature here is unchanged by adding a constant to L or ab, so both are centred first
    (`guided.centre`): window variances, differences of float32 means, then stay exact.
    """
    L, ab = centre(L), centre(ab)
    A, B, _ = linear_coefficients(L, ab, radius=2, eps=1e-4, valid=True)
    resid = crop_border(ab, 2) - (A * crop_border(L, 2) + B)
    mean_ab = box_valid(ab, 2)
    var_ab = (box_valid(ab * ab, 2) - mean_ab * mean_ab).clamp_min(0.0)
    r = _mean(resid * resid)
    hp_ab, hp_l = _hp(ab), _hp(L)
    hf_ab = _mean(hp_ab * hp_ab)  # x * x, not x ** 2: Pow is a slow generic kernel in ORT
    hf_l = _mean(hp_l * hp_l)
    gy_l = L[..., 1:, :] - L[..., :-1, :]
    gx_l = L[..., :, 1:] - L[..., :, :-1]
    gy_ab = ab[..., 1:, :] - ab[..., :-1, :]
    gx_ab = ab[..., :, 1:] - ab[..., :, :-1]
    flat_y = torch.exp(-(gy_l * gy_l) / 4e-4)  # |dL| well below 2 L units
    flat_x = torch.exp(-(gx_l * gx_l) / 4e-4)
    flat = (_mean(flat_y * gy_ab * gy_ab) + _mean(flat_x * gx_ab * gx_ab)) / (
        _mean(flat_y) + _mean(flat_x) + 1e-3
    )
    # A camera's chroma edges are as sharp as the luminance edges they sit on; chroma stretched
    # from a working size is blurred across them. Energy-weighted by |dL|^2, per axis.
    ey, ex = gy_l * gy_l, gx_l * gx_l
    coupling = ((_mean(ey * gy_ab * gy_ab) + _mean(ex * gx_ab * gx_ab)) * 1e10) / _plus_tiny(
        _mean(ey * ey) + _mean(ex * ex), 1e-10
    )
    return [
        _log(r, 1e-7),
        _log(r, 1e-7) - _log(_mean(var_ab), 1e-7),
        _log(hf_ab, 1e-7),
        _log(hf_ab, 1e-7) - _log(hf_l, 1e-6),
        _log(flat, 1e-7),
        _log(coupling, 1e-6),
    ]


def _edge_align(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised |<grad L, grad ab>| of (N,1,h,w) L and (N,2,h,w) ab: one (N,) feature.

    Forward differences from the same pixel, so a chroma edge that sits on its luminance edge
    scores high and one displaced beside it (a shift, a misregistered upsampling) scores low.
    Within [0, sqrt 2]: Cauchy-Schwarz bounds the ratio, and the shrinkage is a convex blend.
    """
    gy_l = L[..., 1:, :-1] - L[..., :-1, :-1]
    gx_l = L[..., :-1, 1:] - L[..., :-1, :-1]
    gy_ab = ab[..., 1:, :-1] - ab[..., :-1, :-1]
    gx_ab = ab[..., :-1, 1:] - ab[..., :-1, :-1]
    dot = (gy_l * gy_ab + gx_l * gx_ab).abs().mean(dim=(-1, -2)).sum(dim=-1)
    size_l = (gy_l * gy_l + gx_l * gx_l).mean(dim=(-1, -2, -3))
    size_ab = (gy_ab * gy_ab + gx_ab * gx_ab).mean(dim=(-1, -2)).sum(dim=-1)
    # A tile without gradients (a white product background) has no alignment to measure:
    # shrink toward a real photo's typical value instead of reading 0/0 as 0, an extreme that
    # the one-class term took for evidence of colorization.
    size = torch.sqrt(size_l * size_ab)
    return (dot + ALIGN_SHRINK * ALIGN_NEUTRAL) / (size + ALIGN_SHRINK)


def _lcurve(L: torch.Tensor, ab: torch.Tensor) -> list[torch.Tensor]:
    """L (N,1,h,w) in [0, 1], ab (N,2,h,w) -> log residual of ab's best tone curve, and ratio.

    Triangular (hat) weights W_k(L) on LCURVE_KNOTS knots make any piecewise-linear curve a
    sum over k; each knot's value is the W-weighted mean of ab (a kernel smoother, one pair of
    MatMuls, so the graph needs no solver), and the curve's prediction W @ m is compared with
    ab. The ratio divides by the chroma's variance: a flat-coloured tile is fitted by any curve.
    """
    n = L.shape[0]
    knots = torch.arange(LCURVE_KNOTS, dtype=L.dtype, device=L.device).view(1, -1, 1, 1)
    w = F.relu(1.0 - (L * (LCURVE_KNOTS - 1) - knots).abs()).reshape(n, LCURVE_KNOTS, -1)
    x = ab.reshape(n, 2, -1).transpose(1, 2)  # (N, hw, 2)
    m = torch.matmul(w, x) / (w.sum(dim=-1, keepdim=True) + 1e-3)  # (N, K, 2)
    resid = x - torch.matmul(w.transpose(1, 2), m)
    r = (resid * resid).mean(dim=(-1, -2))
    dev = x - x.mean(dim=1, keepdim=True)
    var = (dev * dev).mean(dim=(-1, -2))
    return [_log(r, 1e-7), _log(r, 1e-7) - _log(var, 1e-7)]


def _corr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fisher-z of the correlation of two (N,1,h,w) zero-mean-ish maps, clipped to finite."""
    num = (x * y).mean(dim=(-1, -2, -3))
    power = (x * x).mean(dim=(-1, -2, -3)) * (y * y).mean(dim=(-1, -2, -3))
    den = 1e-5 * torch.sqrt(_plus_tiny(power, 1e-10))  # sqrt(power + 1e-10)
    c = (num / den).clamp(-0.999, 0.999)
    return 0.5 * torch.log((1 + c) / (1 - c))


def tile_features(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] tiles -> (N, len(FEATURES)) float features."""
    lab = rgb_to_lab(rgb)
    L, ab = lab[:, :1] / 100.0, lab[:, 1:] / 100.0
    feats: list[torch.Tensor] = []
    align: list[torch.Tensor] = []
    lcurve: list[torch.Tensor] = []
    for s in SCALES:
        Ls = F.avg_pool2d(L, s) if s > 1 else L
        abs_ = F.avg_pool2d(ab, s) if s > 1 else ab
        feats += _scale_features(Ls, abs_)
        if s in ALIGN_SCALES:
            align.append(_edge_align(Ls, abs_))
        if s == LCURVE_SCALE:
            lcurve = _lcurve(Ls, abs_)
    rgb_c = centre(rgb)
    r, g, b = _hp(rgb_c[:, :1]), _hp(rgb_c[:, 1:2]), _hp(rgb_c[:, 2:])
    feats += [_corr(r, g), _corr(g, b), _corr(r, b)]
    chroma = 1e-4 * torch.sqrt(_plus_tiny((ab * ab).sum(1, keepdim=True), 1e-8))  # sqrt(. + 1e-8)
    c_mean = chroma.mean(dim=(-1, -2, -3))
    dev = chroma - c_mean[:, None, None, None]
    c_std = torch.sqrt((dev * dev).mean(dim=(-1, -2, -3)))
    # Circular spread of hue, weighted by chroma: 0 = one hue everywhere, 1 = all hues.
    resultant = 1e-5 * torch.sqrt(_plus_tiny((ab.mean(dim=(-1, -2)) ** 2).sum(-1), 1e-10))
    hue_spread = 1.0 - resultant / (c_mean + 1e-4)
    # Chroma-weighted second harmonic of hue, mean(c cos 2h), mean(c sin 2h), over c_mean:
    # camera colour clusters along the warm-cool axis (skin, foliage, sky), a hue-rotated or
    # tinted photo along another. Sign-free in ab, so it also sees a two-sided palette.
    # The clamp is a no-op in torch (chroma >= 1e-4 there) but not in ONNX Runtime, whose
    # exported graph gave chroma 0 on exactly grey pixels (0 / 0 there, measured at export).
    a, b, c = ab[:, :1], ab[:, 1:], chroma.clamp_min(1e-4)
    axis_cos = ((a * a - b * b) / c).mean(dim=(-1, -2, -3)) / (c_mean + 1e-4)
    axis_sin = ((2 * a * b) / c).mean(dim=(-1, -2, -3)) / (c_mean + 1e-4)
    saturated = (chroma > 0.3).float().mean(dim=(-1, -2, -3))
    # Signed colour and its dependence on L: tints and gradient maps make ab a function of L.
    l_c = L - L.mean(dim=(-1, -2), keepdim=True)
    a_c = ab[:, :1] - ab[:, :1].mean(dim=(-1, -2), keepdim=True)
    b_c = ab[:, 1:] - ab[:, 1:].mean(dim=(-1, -2), keepdim=True)
    feats += [
        _log(c_mean, 1e-3),
        _log(c_std, 1e-3),
        hue_spread,
        axis_cos,
        axis_sin,
        saturated,
        L.mean(dim=(-1, -2, -3)),
        L.std(dim=(-1, -2, -3)),
        ab[:, 0].mean(dim=(-1, -2)),
        ab[:, 1].mean(dim=(-1, -2)),
        _corr(l_c, a_c),
        _corr(l_c, b_c),
    ]
    feats += align + lcurve
    out = torch.stack(feats, dim=1)
    # Scale-8 statistics need tiles of >= 40 px (`ForensicDetector.min_size` asks 64; the
    # view's are 128): on smaller maps the average pools have no window to fill and fail. A
    # feature that is still not finite (a 0/0 on a perfectly flat tile) reads as 0, so the
    # score stays finite.
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


__all__ = [
    "ALIGN_SCALES",
    "CONTENT_SCALE",
    "FEATURES",
    "FORENSIC",
    "LCURVE_KNOTS",
    "LCURVE_SCALE",
    "SCALES",
    "content_weight",
    "tile_features",
]
