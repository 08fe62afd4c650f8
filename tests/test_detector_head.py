"""The forensic head's training rule: smoothed tile targets bound each tile's vote."""

from __future__ import annotations

import math

import numpy as np
import torch

from imgcheck.trainer.detector_head import (
    LABEL_SMOOTHING,
    ForensicConfig,
    ForensicDetector,
    fit_head,
    image_scores,
)
from imgcheck.trainer.forensics import FEATURES


def _tiles(rng: np.random.Generator, shift: float, images: int = 40, per: int = 6):
    d = len(FEATURES)
    feats = rng.normal(shift, 1.0, size=(images * per, d)).astype(np.float32)
    return feats, np.repeat(np.arange(images), per)


def _fit(smoothing: float) -> tuple[ForensicDetector, tuple, tuple]:
    rng = np.random.default_rng(0)
    real, fake = _tiles(rng, 0.0), _tiles(rng, 2.0)
    det = ForensicDetector(ForensicConfig(one_class=False))
    fit_head(det, real, {"f": fake}, steps=300, batch=256, smoothing=smoothing)
    return det, real, fake


def test_smoothed_targets_bound_tile_logits_and_keep_the_order() -> None:
    bound = math.log((1 - LABEL_SMOOTHING / 2) / (LABEL_SMOOTHING / 2))
    smooth, real, fake = _fit(LABEL_SMOOTHING)
    hard, _, _ = _fit(0.0)
    with torch.no_grad():
        ls = smooth.logits_from_features(torch.from_numpy(np.r_[real[0], fake[0]]))
        lh = hard.logits_from_features(torch.from_numpy(np.r_[real[0], fake[0]]))
    # Separable data: hard targets keep growing the logits, smoothed ones stop near the bound.
    assert float(lh.abs().max()) > 2 * bound
    assert float(ls.abs().max()) < 1.5 * bound
    # The ranking is what the threshold uses, and it survives: every fake above every real.
    s_real = image_scores(smooth, *real, n=40)
    s_fake = image_scores(smooth, *fake, n=40)
    assert s_fake.min() > s_real.max()


def _photo_tiles(n: int, seed: int = 0) -> np.ndarray:
    """(n, 128, 128, 3) uint8 tiles with texture and colour: edges, gradients and grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    out = np.empty((n, 128, 128, 3), np.uint8)
    for i in range(n):
        img = rng.uniform(40, 215, 3) + yy[..., None] * rng.normal(0, 40, 3)
        img = img + (xx > rng.uniform(0.2, 0.8))[..., None] * rng.normal(0, 30, 3)
        out[i] = np.clip(np.rint(img + rng.normal(0, 3, img.shape)), 0, 255)
    return out


def _features(tiles: np.ndarray) -> torch.Tensor:
    from imgcheck.trainer.forensics import tile_features

    with torch.no_grad():
        return tile_features(torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0)


def test_a_tile_without_content_gets_the_neutral_logit_and_others_keep_theirs() -> None:
    from imgcheck.trainer.forensics import content_weight

    photos = _photo_tiles(24)
    flat = np.stack([np.full((128, 128, 3), v, np.uint8) for v in (255, 254, 0, 128)])
    torch.manual_seed(0)
    gated = ForensicDetector(ForensicConfig())
    gated.fit_statistics(_features(photos).double().numpy())
    plain = ForensicDetector(ForensicConfig(content_gate=0.0))
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("gate")})
    with torch.no_grad():
        gated.oc_weight.fill_(1.0)  # the one-class term is what made a white tile look fake
        plain.oc_weight.fill_(1.0)
        f_photo, f_flat = _features(photos), _features(flat)
        w_photo, w_flat = content_weight(f_photo), content_weight(f_flat)
        assert float(w_photo.min()) > 0.999 and float(w_flat.max()) < 0.01
        # Tiles that show something score exactly as without the gate ...
        assert torch.allclose(
            gated.logits_from_features(f_photo), plain.logits_from_features(f_photo), atol=1e-3
        )
        # ... flat ones (white, black, mid grey) at the neutral logit, whatever the head said.
        own = plain.logits_from_features(f_flat)
        assert float((own - gated.cfg.gate_neutral).abs().min()) > 0.5
        got = gated.logits_from_features(f_flat)
        assert torch.allclose(got, torch.full_like(got, gated.cfg.gate_neutral), atol=0.05)


def test_a_run_saved_before_the_gate_loads_without_it() -> None:
    cfg = ForensicConfig.from_dict({"kind": "forensic", "hidden": 64, "one_class": True})
    assert cfg.content_gate == 0.0
    assert not [k for k in ForensicDetector(cfg).state_dict() if k.startswith("gate")]
    again = ForensicConfig.from_dict(ForensicConfig().to_dict())
    assert again.content_gate > 0 and "gate_rate" in ForensicDetector(again).state_dict()
