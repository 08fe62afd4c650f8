"""Forensic tile features: what each family of statistics is meant to see, on synthetic tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgcheck.trainer.colour import lab_to_rgb
from imgcheck.trainer.forensics import ALIGN_NEUTRAL, ALIGN_SCALES, FEATURES, tile_features


def _blocky_luminance(rng: np.random.Generator, size: int = 128) -> torch.Tensor:
    """(1, 1, size, size) CIELAB L of random overlapping rectangles: strong, sparse edges."""
    L = np.full((size, size), 50.0, dtype=np.float32)
    for _ in range(24):
        y, x = rng.integers(0, size - 16, size=2)
        h, w = rng.integers(12, 48, size=2)
        L[y : y + h, x : x + w] = rng.uniform(25, 80)
    return torch.from_numpy(L)[None, None]


def _rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return lab_to_rgb(torch.cat([L, ab], dim=1)).clamp(0, 1)


def _align(rgb: torch.Tensor) -> dict[int, float]:
    feats = tile_features(rgb)[0]
    return {s: float(feats[FEATURES.index(f"edge_align@{s}")]) for s in ALIGN_SCALES}


@pytest.fixture
def luminance() -> torch.Tensor:
    return _blocky_luminance(np.random.default_rng(3))


def test_edge_alignment_features_follow_the_declared_names() -> None:
    rgb = torch.rand(2, 3, 128, 128)
    feats = tile_features(rgb)
    assert feats.shape == (2, len(FEATURES))
    assert len(set(FEATURES)) == len(FEATURES)
    assert [f for f in FEATURES if f.startswith("edge_align@")] == [
        f"edge_align@{s}" for s in ALIGN_SCALES
    ]
    assert bool(torch.isfinite(feats).all())


def test_chroma_derived_from_luminance_is_aligned_and_a_shifted_copy_is_not(
    luminance: torch.Tensor,
) -> None:
    # Chroma that is a function of L changes exactly where L does (what a colorizer makes);
    # the same chroma displaced by 6 px changes beside the edges instead.
    ab = torch.cat([0.6 * (luminance - 50.0), -0.4 * (luminance - 50.0)], dim=1)
    shifted = torch.roll(ab, shifts=(6, 6), dims=(-2, -1))
    aligned, displaced = _align(_rgb(luminance, ab)), _align(_rgb(luminance, shifted))
    for s in ALIGN_SCALES:
        assert aligned[s] > 0.8, (s, aligned[s])
        assert displaced[s] < aligned[s] - 0.3, (s, aligned[s], displaced[s])


def test_edge_alignment_ignores_how_strong_the_chroma_is(luminance: torch.Tensor) -> None:
    # Normalised by both gradient energies: halving the chroma is not a different tell.
    ab = torch.cat([0.5 * (luminance - 50.0), 0.3 * (luminance - 50.0)], dim=1)
    full, half = _align(_rgb(luminance, ab)), _align(_rgb(luminance, 0.5 * ab))
    for s in ALIGN_SCALES:
        assert half[s] == pytest.approx(full[s], abs=0.05)


def test_a_tile_without_gradients_reads_a_neutral_alignment_not_an_extreme() -> None:
    # A white product background has no edges to align: 0/0 must not become the extreme 0
    # (real photos' tiles sit around 0.6-1.2), which a one-class term reads as colorization.
    white = torch.ones(1, 3, 128, 128)
    grey = torch.full((1, 3, 128, 128), 0.5)
    for tile in (white, grey):
        assert all(v == pytest.approx(ALIGN_NEUTRAL, abs=1e-6) for v in _align(tile).values())


def test_chroma_stretched_from_half_size_loses_its_finest_band(luminance: torch.Tensor) -> None:
    # Chroma predicted at a working size and upsampled has no energy at 1 px; camera chroma
    # (here noise-like) has. The evidence oracle_lowres is caught by sits at scale 1.
    rng = np.random.default_rng(5)
    ab = torch.from_numpy(rng.normal(0.0, 12.0, (1, 2, 128, 128)).astype(np.float32))
    stretched = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(ab, 2), scale_factor=2, mode="bilinear"
    )
    sharp, soft = (
        tile_features(_rgb(luminance, ab))[0],
        tile_features(_rgb(luminance, stretched))[0],
    )
    for name in ("hf_ab@1", "hf_ratio@1"):
        i = FEATURES.index(name)
        assert float(soft[i]) < float(sharp[i]) - 1.0, (name, float(sharp[i]), float(soft[i]))


def test_a_curved_gradient_map_is_fitted_by_the_l_curve_and_camera_like_chroma_is_not(
    luminance: torch.Tensor,
) -> None:
    # A duotone: ab a curved, non-monotonic function of L (blue shadows, orange mid-tones,
    # neutral highlights), which an L-ab correlation reads as weak. Against it, chroma from an
    # independent pattern of regions (what a camera records: colour is not a function of L).
    t = (luminance - 25.0) / 55.0
    curve = torch.cat([40 * t * (1 - t) - 5, 60 * t * (1 - t) - 30 * (1 - t) ** 2], dim=1)
    other = _blocky_luminance(np.random.default_rng(11))
    independent = torch.cat([0.5 * (other - 50.0), -0.5 * (other - 50.0)], dim=1)
    names = ("lcurve_resid@4", "lcurve_ratio@4", "l_a_corr")
    feats = tile_features(torch.cat([_rgb(luminance, curve), _rgb(luminance, independent)]))
    (resid_map, ratio_map, corr_map), (resid_cam, ratio_cam, _) = (
        [float(f[FEATURES.index(n)]) for n in names] for f in feats
    )
    assert abs(corr_map) < 1.0, corr_map  # its a channel is non-monotonic in L: l_a_corr is weak
    assert resid_map < resid_cam - 2.0, (resid_map, resid_cam)
    assert ratio_map < -2.0 < ratio_cam, (ratio_map, ratio_cam)
