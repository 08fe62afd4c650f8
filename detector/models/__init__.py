"""Finding and verifying models: the shipped defaults in this folder, or a user's `--model`.

A model folder holds `manifest.json` (written by `imgcheck export`) and the ONNX files it names.
Every file is checked against its sha256 before it is handed to ONNX Runtime, so a corrupt or
swapped file is a clear error, not a wrong score.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from imgcheck.session import ModelError

DEFAULT_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
BASE_VARIANT = "fp32"  # the calibrated model itself: the manifest's `detector` entry


class Variant(str, Enum):
    """`--variant`: which detector build runs. Only fp32 carries the calibration; the others
    are export-time conversions of it (int8 for CPU, fp16 for CUDA), kept by export only when
    their AUC stays within 0.005 of fp32's."""

    FP32 = "fp32"
    INT8 = "int8"
    FP16 = "fp16"


@dataclass(frozen=True)
class ModelInfo:
    """One ONNX file and what the runtime needs to know about it."""

    kind: str  # "detector" or "colorizer"
    path: Path
    threshold: float | None = None  # detector only: calibrated decision threshold
    view: dict[str, Any] = field(default_factory=dict)  # detector only: ViewSpec.to_dict()
    work_size: int | None = None  # colorizer only
    meta: dict[str, Any] = field(default_factory=dict)  # the whole manifest entry
    variant: str = BASE_VARIANT  # "fp32" (the calibrated model), "int8", "fp16"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"no {MANIFEST} in model folder {folder}") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("imgcheck_manifest") != 1:
        raise ModelError(f"{path} is not an imgcheck model manifest")
    return data


def _from_onnx_metadata(path: Path, kind: str) -> ModelInfo:
    """A bare .onnx file given with --model: threshold/view come from its metadata_props."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    from imgcheck.errors import first_line
    from imgcheck.session import _ort

    try:
        meta = _ort().InferenceSession(str(path), providers=["CPUExecutionProvider"])
        props = meta.get_modelmeta().custom_metadata_map
    except Exception as exc:
        raise ModelError(f"cannot load model {path}: {first_line(exc)}") from exc
    if props.get("imgcheck.kind") != kind:
        raise ModelError(f"{path} is not an imgcheck {kind} model (imgcheck.kind metadata missing)")
    threshold = float(props["imgcheck.threshold"]) if "imgcheck.threshold" in props else None
    view = json.loads(props["imgcheck.view"]) if "imgcheck.view" in props else {}
    work = int(props["imgcheck.work_size"]) if "imgcheck.work_size" in props else None
    return ModelInfo(kind, path, threshold, view, work, dict(props))


def resolve(
    kind: str, model: Path | None = None, variant: Variant | str | None = None
) -> ModelInfo:
    """Locate and verify the `kind` model ("detector"/"colorizer").

    `model` may be a folder with a manifest (default: the shipped models) or a bare .onnx file.
    `variant` picks e.g. "int8"/"fp16" from the manifest's `variants`; None or "fp32" means the
    base model. A variant that is asked for but not shipped raises `ModelError` naming the
    variants that are (never a silent fall-back to another model).
    """
    variant = getattr(variant, "value", variant) or BASE_VARIANT
    if (
        model is not None
        and model.exists()
        and not model.is_dir()
        and model.suffix.lower() != ".onnx"
    ):
        raise ModelError(f"{model} is neither a model folder (with {MANIFEST}) nor a .onnx file")
    if model is not None and model.suffix.lower() == ".onnx":
        if variant != BASE_VARIANT:
            raise ModelError(
                f"variant {variant!r} needs a model folder whose {MANIFEST} lists it; "
                f"{model} is a single .onnx file (only fp32, the file itself, is available)"
            )
        return _from_onnx_metadata(model, kind)
    folder = model if model is not None else DEFAULT_DIR
    manifest = read_manifest(folder)
    entry = manifest.get(kind)
    if variant != BASE_VARIANT:
        variants = manifest.get("variants")
        variants = variants if isinstance(variants, dict) else {}
        entry = variants.get(f"{kind}_{variant}")
        if entry is None:
            prefix = f"{kind}_"
            shipped = [
                BASE_VARIANT,
                *sorted(n[len(prefix) :] for n in variants if n.startswith(prefix)),
            ]
            raise ModelError(
                f"{folder / MANIFEST} has no {variant} {kind} variant "
                f"(available: {', '.join(shipped)})"
            )
    if not isinstance(entry, dict) or "file" not in entry:
        raise ModelError(f"{folder / MANIFEST} has no {kind} model")
    base = manifest.get(kind, {})
    path = folder / entry["file"]
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
        raise ModelError(f"{path} does not match the sha256 in its manifest (corrupt or replaced)")
    return ModelInfo(
        kind=kind,
        path=path,
        threshold=entry.get("threshold", base.get("threshold")),
        view=entry.get("view", base.get("view", {})),
        work_size=entry.get("work_size", base.get("work_size")),
        meta=entry,
        variant=variant,
    )
