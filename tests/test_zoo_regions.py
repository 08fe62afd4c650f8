"""The zoo's `regions` family (hand colouring): segments follow luminance, flat colour in each."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import colour_photo  # noqa: E402

from imgcheck.trainer.zoo import ZooContext, regions  # noqa: E402
from imgcheck.trainer.zoo._protocol import lab_of  # noqa: E402

pytestmark = pytest.mark.torch


def test_segments_split_at_a_luminance_edge() -> None:
    L = torch.full((1, 1, 40, 60), 20.0)
    L[..., :, 30:] = 80.0  # a dark left half, a bright right half
    labels = regions.segments(L, k=4, spatial=0.2)
    left, right = set(labels[:, :30].flatten().tolist()), set(labels[:, 30:].flatten().tolist())
    assert labels.shape == (40, 60) and not left & right


def test_regions_keep_luminance_and_paint_flat_colour() -> None:
    photos = [
        torch.from_numpy(np.array(colour_photo(i, 64))).permute(2, 0, 1).float() / 255
        for i in range(3)
    ]
    ctx = ZooContext(
        photos=photos, snapshots={}, generator_config={}, work_size=64, seed=0, onnx_colorizers=[]
    )
    colorize = regions.build(ctx)
    # A photo with chroma texture of its own (noise over a colour gradient), so flat paint shows.
    base = np.array(colour_photo(7, 96)).astype(np.float32)
    noisy = base + np.random.default_rng(0).normal(0, 25, base.shape)
    rgb = torch.from_numpy(noisy.clip(0, 255) / 255).permute(2, 0, 1)[None].float()
    out = colorize(rgb, np.random.default_rng(1))
    assert out.shape == rgb.shape
    dL = (lab_of(out)[:, 0] - lab_of(rgb)[:, 0]).abs()
    assert float(dL.mean()) < 2.0  # only ab is painted (gamut clamping aside)
    # Flat colour: far less chroma detail than the photo's own.

    def detail(x: torch.Tensor) -> float:
        ab = lab_of(x)[:, 1:]
        return float((ab[..., 1:, :] - ab[..., :-1, :]).abs().mean())

    assert detail(out) < 0.5 * detail(rgb)
