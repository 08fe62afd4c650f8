"""Baseline colorizers: keep L, ignore the input's colour, and learn what they are meant to learn."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from imgcheck.trainer.baselines import (  # noqa: E402
    EVAL_ONLY,
    TRAINING,
    ExemplarTransferColorizer,
    KNNPatchColorizer,
    LuminanceLUTColorizer,
    build_baseline,
)
from imgcheck.trainer.colour import lab_to_rgb, rgb_to_lab  # noqa: E402

RED_AB, BLUE_AB = (40.0, 25.0), (5.0, -40.0)


def _two_tone(h: int = 48, w: int = 48, seed: int = 0) -> torch.Tensor:
    """Dark pixels are red, bright pixels are blue: colour is a function of L only."""
    g = torch.Generator().manual_seed(seed)
    L = torch.where(torch.rand(1, 1, h // 8, w // 8, generator=g) < 0.5, 35.0, 70.0)
    L = torch.nn.functional.interpolate(L, size=(h, w), mode="nearest")
    dark = L < 50
    a = torch.where(dark, RED_AB[0], BLUE_AB[0])
    b = torch.where(dark, RED_AB[1], BLUE_AB[1])
    return lab_to_rgb(torch.cat([L, a, b], dim=1))


def _stripes_vs_flat(h: int = 48, w: int = 48) -> torch.Tensor:
    """Same mean L on both halves; the textured half is green, the flat half is red."""
    L = torch.full((1, 1, h, w), 50.0)
    stripes = (torch.arange(w // 2) // 3 % 2).float() * 30 - 15
    L[..., w // 2 :] += stripes.view(1, 1, 1, -1)
    a = torch.full_like(L, 40.0)
    b = torch.full_like(L, 25.0)
    a[..., w // 2 :] = -40.0
    b[..., w // 2 :] = 30.0
    return lab_to_rgb(torch.cat([L, a, b], dim=1))


def _lab(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_lab(x)


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    photos = [_two_tone(seed=s) for s in range(4)]
    return {
        "lut": LuminanceLUTColorizer(work_size=32, min_count=5).fit(photos),
        "knn": KNNPatchColorizer(work_size=32, bank_size=512, samples_per_image=256).fit(photos),
        "exemplar": ExemplarTransferColorizer(photos[:2], work_size=32),
    }


@pytest.mark.parametrize("name", ["lut", "knn", "exemplar"])
def test_keeps_luminance_size_and_ignores_input_colour(fitted, name: str) -> None:
    colorize = fitted[name]
    img = _two_tone(40, 56, seed=9)  # not square, not the work size
    out = colorize(img)
    assert out.shape == img.shape and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # L re-attached at full resolution (up to gamut clipping of the new colour).
    assert (_lab(out)[:, 0] - _lab(img)[:, 0]).abs().mean() < 1.0
    # It greys the input itself: a grey copy gives the same result.
    grey = lab_to_rgb(torch.cat([_lab(img)[:, :1], torch.zeros(1, 2, 40, 56)], dim=1))
    assert torch.allclose(colorize(grey), out, atol=2e-3)
    # Batched call equals one-by-one.
    both = colorize(torch.cat([img, grey]))
    assert torch.allclose(both[1], out[0], atol=2e-3)


@pytest.mark.parametrize("name", ["lut", "knn", "exemplar"])
def test_recovers_colour_that_depends_on_luminance(fitted, name: str) -> None:
    target = _two_tone(seed=11)
    lab_t = _lab(target)
    lab_o = _lab(fitted[name](target))
    dark = lab_t[:, 0] < 50
    # Away from region borders (where ab is upsampled/blurred), the hue is the right one.
    a_dark, b_bright = lab_o[:, 1][dark].median(), lab_o[:, 2][~dark].median()
    assert a_dark > 20, f"dark regions should be red, a = {a_dark}"
    assert b_bright < -20, f"bright regions should be blue, b = {b_bright}"


def test_knn_uses_texture_not_only_luminance() -> None:
    photos = [_stripes_vs_flat()]
    knn = KNNPatchColorizer(work_size=48, bank_size=2048, samples_per_image=2048).fit(photos)
    lab = _lab(knn(_stripes_vs_flat()))
    a_flat = lab[:, 1, 8:-8, 4:16].mean()
    a_striped = lab[:, 1, 8:-8, -16:-4].mean()
    assert a_flat > 20 and a_striped < -20


def test_lut_falls_back_for_unseen_cells_and_needs_fit() -> None:
    with pytest.raises(RuntimeError):
        LuminanceLUTColorizer()(torch.rand(1, 3, 8, 8))
    lut = LuminanceLUTColorizer(work_size=32, min_count=5).fit([_two_tone()])
    # Only L in {35, 70} was seen; every other L bin falls back to neutral, not NaN.
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    out = lut(ramp)
    assert torch.isfinite(out).all()


def test_registry_is_disjoint_and_builds_every_name() -> None:
    assert not set(TRAINING) & set(EVAL_ONLY)
    photos = [_two_tone(seed=s)[0] for s in range(3)]  # (3, H, W) items
    for name in [*TRAINING, *EVAL_ONLY]:
        colorize = build_baseline(name, photos, work_size=32)
        assert colorize(photos[0]).shape == (1, 3, 48, 48)
    with pytest.raises(KeyError):
        build_baseline("gan", photos)
