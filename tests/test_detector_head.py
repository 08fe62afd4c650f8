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
