"""The quantized-ab classification pieces (`trainer.bins`) and the zoo's `cnn_bins` family."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import colour_photo  # noqa: E402
from fixtures_trainer import photo_tensors as photos  # noqa: E402

from imgcheck.trainer.bins import ab_prior_weights, nearest_bin  # noqa: E402
from imgcheck.trainer.nets import ab_bin_centres  # noqa: E402
from imgcheck.trainer.zoo import cnn_bins  # noqa: E402
from imgcheck.trainer.zoo._protocol import lab_of  # noqa: E402

pytestmark = pytest.mark.torch


def test_each_bin_centre_is_its_own_nearest_bin() -> None:
    centres = ab_bin_centres()  # (Q, 2), normalised
    ab = centres.T.reshape(1, 2, 1, -1)
    assert torch.equal(nearest_bin(ab)[0, 0], torch.arange(len(centres)))


def test_rebalancing_weights_favour_rare_colours_and_average_one() -> None:
    pics = photos(4)
    w = ab_prior_weights(pics)
    counts = torch.zeros_like(w)
    for p in pics:
        ab = lab_of(p[None])[:, 1:] / 110.0
        counts += torch.bincount(nearest_bin(ab).flatten(), minlength=len(w)).float()
    prior = counts / counts.sum()
    assert float((prior * w).sum()) == pytest.approx(1.0, abs=1e-4)
    seen = prior > 0
    common, rare = int(torch.argmax(prior)), int(torch.argmin(torch.where(seen, prior, 2.0)))
    assert w[rare] > w[common]


def test_cnn_bins_learns_and_its_annealed_mean_commits_to_colour() -> None:
    torch.manual_seed(0)
    pics = photos(6)
    lab = torch.cat([lab_of(p[None]) for p in pics])
    untrained = cnn_bins.BinsColorizer()
    net = cnn_bins.train_bins(pics, seed=0, steps=60)
    weights = ab_prior_weights(pics)
    from imgcheck.trainer.bins import bins_loss

    with torch.no_grad():
        before = bins_loss(untrained.logits(lab[:, :1]), lab[:, 1:] / 110.0, weights)
        after = bins_loss(net.logits(lab[:, :1]), lab[:, 1:] / 110.0, weights)
        z = net.logits(lab[:, :1])
        sharp, mean = net.decode(z, 0.38), net.decode(z, 1.0)
    assert float(after) < float(before)
    assert sharp.shape == (len(pics), 2, 16, 16)
    # A lower temperature moves the decode toward the most likely bin: more chroma, not less.
    assert float(sharp.norm(dim=1).mean()) > float(mean.norm(dim=1).mean())


def test_cnn_bins_family_keeps_luminance_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from imgcheck.trainer.zoo import ZooContext

    pics = photos(4)
    ctx = ZooContext(
        photos=pics, snapshots={}, generator_config={}, work_size=64, seed=0, onnx_colorizers=[]
    )
    monkeypatch.setattr(cnn_bins, "STEPS", 5)  # the family's training is not under test here
    colorize = cnn_bins.build(ctx)
    assert colorize is not None
    rgb = torch.from_numpy(np.array(colour_photo(9, 80))).permute(2, 0, 1)[None].float() / 255
    out = colorize(rgb, np.random.default_rng(0))
    assert out.shape == rgb.shape
    dL = (lab_of(out)[:, 0] - lab_of(rgb)[:, 0]).abs()
    assert float(dL.mean()) < 2.0  # L is the photo's; only ab is invented (gamut clamp aside)
