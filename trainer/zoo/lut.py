"""A statistical look-up table: mean ab per (L, texture, row) cell, with a drawn chroma gain."""

from __future__ import annotations

import numpy as np
import torch

from imgcheck.trainer.baselines import LuminanceLUTColorizer
from imgcheck.trainer.zoo import ZooColorizer, ZooContext


def build(ctx: ZooContext) -> ZooColorizer:
    table = LuminanceLUTColorizer(work_size=ctx.work_size).fit(ctx.photos)

    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        table.chroma_gain = float(rng.uniform(1.0, 1.8))
        return table(rgb)

    return colorize
