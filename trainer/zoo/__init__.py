"""The colorizer zoo: one small module per family of colorizers, behind one registry.

A detector trained on one colorizer learns that colorizer. The zoo gives the classifier phase
(and the leave-one-family-out protocol, `trainer.lofo`) genuinely different mechanisms:

| family | module | mechanism | chroma vs a camera's |
|---|---|---|---|
| `gan` | ours | our U-Net GAN (final and mid snapshots), deployed path | smooth |
| `ours_pre` | ours | our U-Net before the GAN phase (bin cross-entropy) | smooth |
| `cnn` | cnn | small regression CNN of another design (plain dilated stack, MSE, chroma at 1/4) trained in-run | very smooth |
| `cnn_bins` | cnn_bins | classification CNN (Zhang et al. 2016 style: rebalanced ab bins, annealed mean at a drawn temperature), encoder + residual dilated middle, chroma at 1/4, trained in-run | smooth, saturated, banded |
| `shuffle` | shuffle | U-Net with pixel-shuffle (sub-pixel) upsampling, DeOldify style, L1 loss, chroma at 1/1 of a 256-512 px working size, drawn saturation gain, trained in-run | smooth, 2 x 2 phase pattern |
| `onnx` | onnx | any colorizer ONNX graph given to the run (e.g. imgcheck 0.1's) | smooth |
| `exemplar` | exemplar | Welsh et al. 2002 reference-based transfer | too noisy |
| `knn` | knn | k-NN patch regression, no network | blotchy |
| `lut` | lut | luminance/texture look-up table | smooth, muted |
| `propagation` | propagation | Levin-style edge-aware propagation of sparse true-colour hints | piecewise flat |
| `regions` | regions | hand colouring by regions: k-means segments of (L, y, x), each painted one flat colour (true mean re-saturated and hue-shifted, or from another photo's palette) | flat per region |
| `tint` | tint | global tint / gradient map from L (hand tinting, phone-app filters) | a function of L |
| `oracle_lowres` | oracle | true chroma band-limited to a working size, upsampled 4 ways | band-limited |
| `oracle_tone` | oracle | true chroma hue-rotated / re-saturated / quantized | implausible hues |
| `oracle_shift` | oracle | chroma of a neighbouring region (misregistered) | misaligned edges |
| `random_cnn` * | unseen | untrained CNN from L, chroma at a working size | smooth, meaningless |
| `hue_field` * | unseen | smooth random hue field, chroma fading to black and white | smooth, structure-blind |
| `mirror` * | unseen | the true chroma mirrored | camera-grade, misplaced |

Starred: held out of the default `zoo_families` and of every shipped model (`HELD_OUT`): the
out-of-sample check (`trainer.zoo_fakes`, MODEL_CARD "Families built after the detector").

Every family is a factory `build(ctx) -> colorizer`, where a colorizer maps (1, 3, H, W) sRGB
in [0, 1] and a numpy Generator (for its per-call choices: working size, upsampler, ...) to a
colorized (1, 3, H, W). Factories fit on `ctx.photos` (training photos only, never validation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

ZooColorizer = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


@dataclass
class ZooContext:
    """What factories may use: training photos at work size, our snapshots, the run's settings."""

    photos: list[torch.Tensor]  # (3, h, w) in [0, 1], training split only
    snapshots: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    generator_config: dict[str, Any] = field(default_factory=dict)
    work_size: int = 256
    seed: int = 0
    onnx_colorizers: list[str] = field(default_factory=list)
    threads: int = 1


@dataclass(frozen=True)
class Family:
    name: str
    mechanism: str
    direction: str  # "smooth" or "noisy": which way its chroma deviates from a camera's
    build: Callable[[ZooContext], ZooColorizer | None]  # None: not available in this run


def _registry() -> dict[str, Family]:
    from imgcheck.trainer.zoo import (
        cnn,
        cnn_bins,
        exemplar,
        knn,
        lut,
        onnx,
        oracle,
        ours,
        propagation,
        regions,
        shuffle,
        tint,
        unseen,
    )

    fams = [
        Family("gan", "our U-Net GAN, final and mid snapshots", "smooth", ours.build_gan),
        Family("ours_pre", "our U-Net before the GAN phase", "smooth", ours.build_pre),
        Family("cnn", "regression CNN of another design, MSE, chroma at 1/4", "smooth", cnn.build),
        Family(
            "cnn_bins",
            "classification CNN, rebalanced ab bins, annealed mean",
            "smooth",
            cnn_bins.build,
        ),
        Family("shuffle", "pixel-shuffle U-Net, L1, chroma at 1/1", "smooth", shuffle.build),
        Family("onnx", "external colorizer ONNX graph(s)", "smooth", onnx.build),
        Family("exemplar", "Welsh et al. reference-based transfer", "noisy", exemplar.build),
        Family("knn", "k-NN patch regression", "noisy", knn.build),
        Family("lut", "luminance/texture look-up table", "smooth", lut.build),
        Family(
            "propagation", "edge-aware propagation of sparse hints", "smooth", propagation.build
        ),
        Family("tint", "global tint / gradient map of L", "smooth", tint.build),
        Family("regions", "hand colouring: flat colour per region", "smooth", regions.build),
        Family("oracle_lowres", "true chroma at a working size", "smooth", oracle.build_lowres),
        Family(
            "oracle_tone", "true chroma, hue/saturation/quantization", "smooth", oracle.build_tone
        ),
        Family("oracle_shift", "chroma of a neighbouring region", "noisy", oracle.build_shift),
        Family("random_cnn", "untrained CNN from L", "smooth", unseen.build_random_cnn),
        Family("hue_field", "smooth random hue field", "smooth", unseen.build_hue_field),
        Family("mirror", "true chroma, mirrored", "noisy", unseen.build_mirror),
    ]
    return {f.name: f for f in fams}


# Written after the shipped detector and never trained on: keep them out of `zoo_families` so
# that they stay a test of generalization (a run that adds one gives up that test).
HELD_OUT = ("random_cnn", "hue_field", "mirror")


def families() -> dict[str, Family]:
    """Name -> Family, in table order."""
    return _registry()


def build_zoo(names: list[str], ctx: ZooContext) -> dict[str, ZooColorizer]:
    """Ready colorizers for the named families; unavailable ones (no snapshot, no ONNX) left out."""
    known = families()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown zoo families {unknown}; known: {list(known)}")
    out = {}
    for name in names:
        fn = known[name].build(ctx)
        if fn is not None:
            out[name] = fn
    return out


__all__ = ["HELD_OUT", "Family", "ZooColorizer", "ZooContext", "build_zoo", "families"]
