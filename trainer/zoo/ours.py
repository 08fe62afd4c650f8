"""Our own colorizer, exactly as `imgcheck colorize` runs it (`pipeline.colorize_full`)."""

from __future__ import annotations

import numpy as np
import torch

from imgcheck.trainer.zoo import ZooColorizer, ZooContext

# The shipped decode setting (bins: temperature; regression: chroma gain) is chosen after
# training (`trainer.decode`): the zoo covers the range it is chosen from.
SETTINGS = {"temperature": (0.3, 0.38, 0.5, 0.7), "gain": (1.0, 1.5, 2.0, 2.5)}


def _generators(ctx: ZooContext, name: str) -> list[torch.nn.Module]:
    from imgcheck.trainer.nets import decode_setting, frozen_generator

    state = ctx.snapshots.get(name)
    if state is None:
        return []
    cfg = dict(ctx.generator_config)
    key = decode_setting(cfg)
    return [frozen_generator(state, {**cfg, key: v}) for v in SETTINGS[key]]


def _run(generators: list[torch.nn.Module], work_size: int) -> ZooColorizer:
    from imgcheck.trainer.pipeline import colorize_full

    @torch.no_grad()
    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        G = generators[int(rng.integers(len(generators)))]
        return colorize_full(G, rgb, work_size)

    return colorize


def build_gan(ctx: ZooContext) -> ZooColorizer | None:
    """The final GAN generator and, where the run has one, its mid-GAN snapshot, each decoded
    at the decode settings the shipped one is chosen from."""
    gens = _generators(ctx, "gan") + _generators(ctx, "gan_mid")
    return _run(gens, ctx.work_size) if gens else None


def build_pre(ctx: ZooContext) -> ZooColorizer | None:
    """The generator at the end of pre-training (snapshot "l1"), before the GAN phase."""
    gens = _generators(ctx, "l1")
    return _run(gens, ctx.work_size) if gens else None


__all__ = ["build_gan", "build_pre"]
