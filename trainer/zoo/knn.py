"""k-nearest-neighbour regression from L patches to ab: learning without a network or a loss."""

from __future__ import annotations

import numpy as np
import torch

from imgcheck.trainer.baselines import KNNPatchColorizer
from imgcheck.trainer.zoo import ZooColorizer, ZooContext


def build(ctx: ZooContext) -> ZooColorizer:
    variants = [
        KNNPatchColorizer(work_size=s, k=k, seed=ctx.seed + i).fit(ctx.photos)
        for i, (s, k) in enumerate(((192, 4), (256, 8)))
    ]

    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return variants[int(rng.integers(len(variants)))](rgb)

    return colorize
