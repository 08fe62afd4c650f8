"""Reference-based transfer (Welsh, Ashikhmin & Mueller 2002), at several working sizes.

Each pixel takes the ab of the best-matching reference sample: chroma that jumps from pixel to
pixel, *noisier* than a camera's. The opposite deviation of most colorizers, which is why a
detector that only learns "fake = smooth chroma" rates these as more real than real photos.
"""

from __future__ import annotations

import numpy as np
import torch

from imgcheck.trainer.baselines import ExemplarTransferColorizer
from imgcheck.trainer.zoo import ZooColorizer, ZooContext

WORK_SIZES = (192, 256, 384)


def build(ctx: ZooContext) -> ZooColorizer:
    gen = torch.Generator().manual_seed(ctx.seed + 11)
    pick = torch.randperm(len(ctx.photos), generator=gen)[:16].tolist()
    refs = [ctx.photos[i] for i in pick]
    variants = [
        ExemplarTransferColorizer(refs[k::2], work_size=s, seed=ctx.seed + k)
        for k, s in enumerate(WORK_SIZES)
    ]

    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return variants[int(rng.integers(len(variants)))](rgb)

    return colorize
