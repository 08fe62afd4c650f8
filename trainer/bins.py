"""Quantized-ab classification (Zhang et al. 2016): bin lookup, class rebalancing, the loss.

Used by our generator's bins head (`nets.ColorizerConfig(head="bins")`, `trainer.train`) and by
the zoo's classification colorizer (`zoo.cnn_bins`), so both train on one
definition of the bins and their weights.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import rgb_to_lab_normalized
from imgcheck.trainer.nets import AB_BIN, AB_BINS_PER_AXIS


def ab_prior_weights(photos: list[torch.Tensor], mix: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights per ab bin (Zhang et al. 2016, eq. 4): 1 / ((1-mix) p + mix/Q),
    scaled so that their expectation under the empirical prior p is 1.

    Without them the cross-entropy is dominated by the many low-chroma pixels of every photo
    and the decoded colours drift back toward grey.
    """
    q = AB_BINS_PER_AXIS**2
    counts = torch.zeros(q, dtype=torch.float64)
    for rgb in photos:
        ab = rgb_to_lab_normalized(rgb[None].float())[:, 1:]
        counts += torch.bincount(nearest_bin(ab).flatten(), minlength=q).double()
    p = counts / counts.sum().clamp_min(1.0)
    w = 1.0 / ((1.0 - mix) * p + mix / q)
    return (w / (p * w).sum()).float()


def nearest_bin(ab: torch.Tensor) -> torch.Tensor:
    """Normalised ab (N, 2, H, W) -> (N, H, W) index of the nearest ab bin centre."""
    u = ((ab * 110.0 + 105.0) / AB_BIN).round().long().clamp(0, AB_BINS_PER_AXIS - 1)
    return u[:, 0] * AB_BINS_PER_AXIS + u[:, 1]


def bins_loss(logits: torch.Tensor, ab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Rebalanced cross-entropy of bin logits (N, Q, h, w) against true ab (N, 2, H, W).

    The target is soft: true ab is spread bilinearly over its 4 surrounding bin centres, so the
    loss has no steps at bin edges. ab is box-averaged to the logits' resolution first.
    """
    ab = F.adaptive_avg_pool2d(ab, logits.shape[-2:]).float()
    n = AB_BINS_PER_AXIS
    u = ((ab * 110.0 + 105.0) / AB_BIN).clamp(0, n - 1 - 1e-4)
    i0 = u.floor()
    f = u - i0
    i0 = i0.long()
    logp = torch.log_softmax(logits.float(), dim=1)
    ce = torch.zeros_like(f[:, 0])
    for da in (0, 1):
        for db in (0, 1):
            idx = (i0[:, 0] + da) * n + (i0[:, 1] + db)
            wa = f[:, 0] if da else 1 - f[:, 0]
            wb = f[:, 1] if db else 1 - f[:, 1]
            ce = ce - wa * wb * logp.gather(1, idx[:, None])[:, 0]
    pixel_w = weights.to(ab.device)[nearest_bin(ab)]
    return (pixel_w * ce).mean()


__all__ = ["ab_prior_weights", "bins_loss", "nearest_bin"]
