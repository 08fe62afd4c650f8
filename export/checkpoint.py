"""Reading `RUN_DIR/checkpoints/final.pt` (the contract in docs/ARCHITECTURE.md) into eval-mode nets.

Every way a run folder can be wrong (missing, unfinished, corrupt, truncated, written by a
different network layout) becomes one `ExportError` with a message that says what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from imgcheck.errors import first_line
from imgcheck.export.errors import ExportError
from imgcheck.trainer.detector_head import ForensicConfig, ForensicDetector
from imgcheck.trainer.nets import (
    ColorizerConfig,
    DiscriminatorConfig,
    PatchDiscriminator,
    UNetColorizer,
)
from imgcheck.view import ViewSpec

FINAL = Path("checkpoints") / "final.pt"
REQUIRED = (
    "format",
    "generator",
    "generator_config",
    "detector",
    "detector_config",
    "work_size",
    "threshold",
    "view",
)


@dataclass
class TrainedRun:
    """What export needs from a finished run."""

    run_dir: Path
    generator: UNetColorizer
    detector: PatchDiscriminator | ForensicDetector
    work_size: int
    threshold: float
    view: ViewSpec
    threshold_rule: str = ""
    data_digest: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    # The scan cascade's stages (trainer/cascade.py): the manifest's `detector.cascade`.
    cascade: dict[str, Any] | None = None


def load_run(run_dir: Path) -> TrainedRun:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"run folder not found: {run_dir}")
    path = run_dir / FINAL
    if not path.is_file():
        raise ExportError(
            f"{run_dir} has no {FINAL.as_posix()}: point export at a finished training run "
            "(imgcheck train writes final.pt when it completes)"
        )
    try:
        # weights_only: final.pt holds tensors, numbers, strings and dicts only, so the
        # safe loader is enough and a tampered checkpoint cannot run code.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "unsupported global" in str(exc).lower():
            raise ExportError(
                f"cannot read {path}: it holds Python objects other than tensors and plain "
                "values, which the safe loader refuses (final.pt must follow "
                "docs/ARCHITECTURE.md)"
            ) from exc
        raise ExportError(
            f"cannot read {path}: the file is corrupt or truncated ({first_line(exc)})"
        ) from exc
    if not isinstance(ckpt, dict):
        raise ExportError(f"{path} is not an imgcheck final checkpoint (not a dict)")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise ExportError(
            f"{path} is not an imgcheck final checkpoint: missing {', '.join(missing)}"
        )
    if ckpt["format"] != 1:
        raise ExportError(f"{path} has checkpoint format {ckpt['format']!r}; this export reads 1")
    try:
        generator = UNetColorizer(ColorizerConfig(**ckpt["generator_config"]))
        generator.load_state_dict(ckpt["generator"])
        detector: PatchDiscriminator | ForensicDetector
        if ckpt.get("detector_kind", "patchgan") == "forensic":
            detector = ForensicDetector(ForensicConfig.from_dict(dict(ckpt["detector_config"])))
        else:
            detector = PatchDiscriminator(DiscriminatorConfig(**ckpt["detector_config"]))
        detector.load_state_dict(ckpt["detector"])
    except Exception as exc:
        raise ExportError(
            f"{path}: the weights do not fit the network configs stored with them "
            f"({first_line(exc)})"
        ) from exc
    try:
        work_size = int(ckpt["work_size"])
        threshold = float(ckpt["threshold"])
        view = ViewSpec.from_dict(dict(ckpt["view"]))
    except Exception as exc:
        raise ExportError(f"{path}: bad work_size/threshold/view ({first_line(exc)})") from exc
    if work_size < generator.multiple or work_size % generator.multiple:
        raise ExportError(
            f"{path}: work_size {work_size} is not a positive multiple of {generator.multiple}"
        )
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ExportError(f"{path}: threshold {threshold} is not a probability in [0, 1]")
    if view.crop < detector.min_size:
        raise ExportError(
            f"{path}: view crop {view.crop} is below the detector's minimum "
            f"{detector.min_size}"
        )
    metrics = ckpt.get("metrics") or {}
    cascade = ckpt.get("cascade")
    if cascade is not None:
        from imgcheck.cascade import problems

        bad = problems(cascade)
        if bad:
            raise ExportError(f"{path}: bad cascade ({'; '.join(bad)})")
    return TrainedRun(
        run_dir=run_dir,
        generator=generator.eval(),
        detector=detector.eval(),
        work_size=work_size,
        threshold=threshold,
        view=view,
        threshold_rule=str(ckpt.get("threshold_rule", "")),
        data_digest=str(ckpt.get("data_digest", "")),
        metrics=dict(metrics) if isinstance(metrics, dict) else {},
        version=str(ckpt.get("version", "")),
        cascade=dict(cascade) if cascade is not None else None,
    )
