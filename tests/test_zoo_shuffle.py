"""The zoo's `shuffle` family: a pixel-shuffle U-Net that predicts chroma at its working size."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import photo_tensors as photos  # noqa: E402

from imgcheck.trainer.zoo import ZooContext, families, shuffle  # noqa: E402
from imgcheck.trainer.zoo._protocol import lab_of  # noqa: E402

pytestmark = pytest.mark.torch


def test_shuffle_predicts_chroma_at_full_working_resolution() -> None:
    net = shuffle.ShuffleColorizer().eval()
    L = torch.rand(2, 1, 40, 56) * 100
    with torch.no_grad():
        ab = net(L)
    assert ab.shape == (2, 2, 40, 56)
    # Sub-pixel upsampling, not a stretch of a 1/4 map: neighbouring pixels differ.
    assert float((ab[..., 1:, :] - ab[..., :-1, :]).abs().mean()) > 1e-4


def test_shuffle_learns_from_the_photos() -> None:
    pics = photos(6)
    lab = torch.cat([lab_of(p[None]) for p in pics])[..., :64, :64]
    torch.manual_seed(1)
    untrained = shuffle.ShuffleColorizer().eval()
    net = shuffle.train_shuffle(pics, seed=0, steps=80)
    with torch.no_grad():
        before = float((untrained(lab[:, :1]) - lab[:, 1:]).abs().mean())
        after = float((net(lab[:, :1]) - lab[:, 1:]).abs().mean())
    assert after < 0.8 * before
    assert not any(p.requires_grad for p in net.parameters())


def test_shuffle_family_keeps_luminance_and_any_image_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shuffle, "STEPS", 10)
    assert "shuffle" in families()
    colorize = shuffle.build(ZooContext(photos=photos(3)))
    assert colorize is not None
    rgb = photos(1, 70)[0][None].mean(1, keepdim=True).repeat(1, 3, 1, 1)  # grey, odd size
    out = colorize(rgb, np.random.default_rng(0))
    assert out.shape == rgb.shape
    assert float((lab_of(out)[:, 0] - lab_of(rgb)[:, 0]).abs().max()) < 3.0
    assert float(lab_of(out)[:, 1:].abs().mean()) > 0.1  # it did colour the grey photo
