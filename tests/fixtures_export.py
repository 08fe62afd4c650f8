"""A tiny finished training run (random-init nets) following the final.pt contract, for export tests."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

SMALL_G = {"base": 4, "depth": 2, "max_channels": 8}
SMALL_D = {"base": 4, "layers": 2}
SMALL_VIEW = {"mode": "grid", "max_side": 96, "crop": 32, "grid": 2}


def make_run(
    root: Path,
    *,
    generator: dict | None = None,
    detector: dict | None = None,
    work_size: int = 32,
    view: dict | None = None,
    val_images: int = 0,
    seed: int = 0,
) -> Path:
    """RUN/checkpoints/final.pt (+ split.json with `val_images` photos under RUN/val/)."""
    import torch

    from imgcheck import __version__
    from imgcheck.export.samples import natural_image
    from imgcheck.trainer.nets import (
        ColorizerConfig,
        DiscriminatorConfig,
        PatchDiscriminator,
        UNetColorizer,
    )

    torch.manual_seed(seed)
    g_cfg = ColorizerConfig(**(SMALL_G if generator is None else generator))
    d_cfg = DiscriminatorConfig(**(SMALL_D if detector is None else detector))
    run = Path(root)
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    g = UNetColorizer(g_cfg)
    final = {
        "format": 1,
        "generator": g.state_dict(),
        "generator_config": asdict(g_cfg),
        "generator_l1": g.state_dict(),
        "detector": PatchDiscriminator(d_cfg).state_dict(),
        "detector_config": asdict(d_cfg),
        "work_size": work_size,
        "threshold": 0.5,
        "threshold_rule": "fixed 0.5 (test fixture)",
        "view": dict(SMALL_VIEW if view is None else view),
        "data_digest": "0" * 64,
        "metrics": {"auc": 0.5, "tpr_at_fpr_0.01": 0.0},
        "version": __version__,
    }
    torch.save(final, run / "checkpoints" / "final.pt")
    rng = np.random.default_rng(seed)
    val = []
    if val_images:
        (run / "val").mkdir(exist_ok=True)
        for i in range(val_images):
            h, w = (int(v) for v in rng.integers(48, 96, size=2))
            name = f"val/photo_{i:03d}.png"
            Image.fromarray(natural_image(rng, h, w)).save(run / name)
            val.append(name)
    # As trainer/data.py writes it: val paths relative to `root`.
    split = {"root": str(run), "data_digest": "0" * 64, "train": [], "val": val, "skipped": {}}
    (run / "split.json").write_text(json.dumps(split), encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"version": __version__}), encoding="utf-8")
    return run
