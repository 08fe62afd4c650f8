"""`imgcheck export MODELS --regraph --out DIR`: a shipped detector through today's feature graph.

Why: the forensic features are traced from `trainer.forensics` (and the colour math of
`trainer.colour`) at export time, so a faster or fixed feature graph reaches users only through
a new export, and an export reads a run folder that may be long gone. All that a run adds to
the detector graph is its head (standardisation, MLP, one-class term), and the head sits in
detector.onnx as initializers. This rebuilds the head from them, proves the rebuilt head
reproduces the shipped graph, exports it through the current code, and keeps the calibration
(threshold, view, cascade) only if the new graph's scores stay within `SCORE_BOUND` of the old
graph's: a graph change that moves scores more needs a real export and recalibration.

The colorizer is copied as it is. int8/fp16 variants are rebuilt from the new graph (with
`--calib`, as export does), else listed as skipped.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from imgcheck.export.api import Say, _quiet
from imgcheck.export.errors import ExportError

SCORE_BOUND = 1e-4  # most a score may move between the shipped graph and the re-traced one
LEGACY_PARITY_BOUND = 1e-2  # the read-back check of a shipped graph (see `regraph_models`)
_HEAD = "discriminator."
_REQUIRED = ("mu", "sigma", "keep", "oc_mean", "oc_prec", "oc_shift", "mlp.0.weight")


def sample_tiles(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 photo-like tiles: smooth random colour fields, edges and grain.

    Scores of pure noise saturate at 0 or 1, where a logit cannot be read back; these land in
    between, like photos, so the one-class weight can be fitted from them."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        base = rng.uniform(40, 215, 3)
        slope = rng.normal(0, 40, (2, 3))
        img = base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
        cut = rng.uniform(0.2, 0.8)
        img = img + (xx > cut)[..., None] * rng.normal(0, 30, 3)
        img = img + rng.normal(0, rng.uniform(1, 6), img.shape)
        out[i] = np.clip(np.rint(img), 0, 255)
    return out


def _initializers(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _one_class_weight(model: Any, init: dict[str, np.ndarray]) -> float | None:
    """softplus(oc_weight), which the exporter folds into the constant that multiplies
    (one-class distance - oc_shift): found by following the graph from `oc_shift`.

    The exporter also merges equal constants, so `oc_shift` may feed other nodes (a head whose
    shift is exactly 1.0 stands in for every 1.0 in the graph): only a Sub of oc_shift whose
    result is scaled by one scalar constant counts, and anything but one match is "not found"."""
    from onnx import numpy_helper

    consts = dict(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    shifted = {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Sub" and len(n.input) == 2 and n.input[1] == _HEAD + "oc_shift"
    }
    found = []
    for node in model.graph.node:
        if node.op_type == "Mul" and shifted.intersection(node.input):
            scalars = [consts[i] for i in node.input if i in consts and consts[i].size == 1]
            found += [float(v) for v in scalars]
    return found[0] if len(found) == 1 else None


def _fit_one_class_weight(model: Any, det: Any) -> float:
    """The same weight read back from outputs, for a graph laid out otherwise: the graph's
    logit minus the rebuilt MLP's is softplus(oc_weight) times the one-class term. Good to
    ~1e-3 relative only (the features' float32 noise), which the score check then judges."""
    import torch

    from imgcheck.session import Device, create_session
    from imgcheck.trainer.forensics import tile_features

    tiles = sample_tiles(48, 128)
    session = create_session(model.SerializeToString(), Device.CPU)
    score = session.run(["score"], {"image": tiles})[0].astype(np.float64)
    with torch.no_grad():
        rgb = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
        z = det.standardize(tile_features(rgb))
        base = det.mlp(z)[:, 0].double().numpy()
        oc = (det.one_class(z) - det.oc_shift).double().numpy()
    ok = (score > 1e-6) & (score < 1 - 1e-6)
    if ok.sum() < 8:
        raise ExportError("cannot read the detector's one-class weight back: its scores saturate")
    logit = np.log(score[ok] / (1 - score[ok]))
    return float(np.dot(oc[ok], logit - base[ok]) / max(float(np.dot(oc[ok], oc[ok])), 1e-12))


def head_from_graph(model: Any) -> Any:
    """A shipped forensic detector.onnx -> the `ForensicDetector` whose export it is.

    Everything but the one-class weight is stored under its own name; the exporter folds
    softplus(oc_weight) into a constant, which is found in the graph (or, failing that, fitted
    from its outputs)."""
    import torch

    from imgcheck.trainer.detector_head import ForensicConfig, ForensicDetector
    from imgcheck.trainer.forensics import FEATURES

    init = _initializers(model)
    missing = [k for k in _REQUIRED if _HEAD + k not in init]
    if missing:
        raise ExportError(
            "--regraph needs a forensic detector.onnx exported by imgcheck (missing "
            f"{', '.join(_HEAD + k for k in missing)}); a PatchGAN detector cannot be re-traced"
        )
    keep = init[_HEAD + "keep"]
    if keep.shape != (len(FEATURES),):
        raise ExportError(
            f"the detector has {keep.shape[0]} features and this imgcheck {len(FEATURES)}: "
            "its graph cannot be re-traced by this version"
        )
    rate, neutral = init.get(_HEAD + "gate_rate"), init.get(_HEAD + "gate_neutral")
    gated = rate is not None and neutral is not None  # the content gate; absent = none
    cfg = ForensicConfig(
        keep=tuple(f for f, k in zip(FEATURES, keep.tolist(), strict=True) if k > 0),
        hidden=int(init[_HEAD + "mlp.0.weight"].shape[0]),
        content_gate=float(rate) ** -0.5 if gated else 0.0,
        gate_neutral=float(neutral) if gated else 0.0,
    )
    det = ForensicDetector(cfg)
    state = {
        k[len(_HEAD) :]: torch.from_numpy(v.copy()) for k, v in init.items() if k.startswith(_HEAD)
    }
    state["oc_weight"] = torch.tensor(0.0)
    try:
        det.load_state_dict(state)
    except RuntimeError as exc:
        raise ExportError(f"the detector's weights do not fit this imgcheck's head: {exc}") from exc
    det.eval()

    weight = _one_class_weight(model, init)
    if weight is None:
        weight = _fit_one_class_weight(model, det)
    # softplus(w) = weight; a weight that is (numerically) zero means a head without the term.
    raw = math.log(math.expm1(weight)) if weight > 1e-9 else -30.0
    det.oc_weight.data.fill_(raw)
    return det


def read_models(models: Path) -> tuple[dict[str, Any], Any]:
    """A model folder -> its manifest and its detector graph (an onnx.ModelProto), or an
    ExportError saying it is not one (the tools that rework shipped models start here)."""
    import onnx

    from imgcheck.models import MANIFEST

    try:
        manifest = json.loads((models / MANIFEST).read_text(encoding="utf-8"))
        graph = onnx.load(str(models / manifest["detector"]["file"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{models} is not an imgcheck model folder: {exc}") from exc
    return manifest, graph


def regraph_models(
    models: Path,
    out: Path,
    *,
    overwrite: bool = False,
    opset: int = 18,
    calib: Path | None = None,
    calib_count: int = 64,
    variants: bool = True,
    say: Say = _quiet,
) -> dict[str, Any]:
    """MODELS (a folder with manifest.json) -> OUT with detector.onnx re-traced; the manifest."""
    import onnx
    import torch

    from imgcheck.export import manifest as mf
    from imgcheck.export.api import _variants, check_out, staging
    from imgcheck.export.checkpoint import TrainedRun
    from imgcheck.export.onnx_export import export_detector, io_spec, save_model
    from imgcheck.export.verify import detector_shapes, verify_detector
    from imgcheck.models import MANIFEST
    from imgcheck.session import Device, create_session
    from imgcheck.view import ViewSpec

    models = Path(os.path.abspath(models))
    if Path(os.path.abspath(out)) == models:
        raise ExportError("--out must be another folder than the models being re-traced")
    out = check_out(out, overwrite=overwrite, opset=opset, calib=calib)
    old_manifest, old = read_models(models)
    entry = old_manifest["detector"]

    say("rebuilding the detector head from its graph")
    det = head_from_graph(old)
    view = ViewSpec.from_dict(entry["view"])
    threshold = float(entry["threshold"])
    shapes = detector_shapes(view.crop, int(det.min_size))
    # The head is the shipped one. Graphs exported before round 2, stop 19 lost the features'
    # tiny eps (`forensics._plus_tiny`): up to 3.4e-3 off torch on near-noise-free images and
    # far off on flat tiles, so the read-back is checked at that looser bound, flat tiles aside.
    verify_detector(det, old, shapes, bound=LEGACY_PARITY_BOUND, flat=False)
    say("tracing it through this version's feature graph")
    new = export_detector(det, threshold, entry["view"], view.crop, opset)
    parity = verify_detector(det, new, shapes, bound=det.parity_bound)
    tiles = sample_tiles(64, view.crop, seed=1)
    a, b = (
        create_session(m.SerializeToString(), Device.CPU).run(["score"], {"image": tiles})[0]
        for m in (old, new)
    )
    moved = float(np.abs(a.astype(np.float64) - b).max())
    if not moved <= SCORE_BOUND:
        raise ExportError(
            f"the re-traced graph moves scores by {moved:.2g} (> {SCORE_BOUND}): the shipped "
            "threshold and cascade would no longer hold; export and calibrate from a run"
        )
    say(f"scores move by at most {moved:.2g} on {len(tiles)} tiles")

    with staging(out) as tmp:
        variant_files = {v["file"] for v in old_manifest.get("variants", {}).values()}
        for item in models.iterdir():
            if item.is_file() and item.name not in {MANIFEST, entry["file"], *variant_files}:
                shutil.copy2(item, tmp / item.name)
        save_model(new, tmp / "detector.onnx")
        manifest = copy.deepcopy(old_manifest)
        kept = {k: entry[k] for k in ("threshold_rule", "cascade") if k in entry}
        manifest["detector"] = mf.file_entry(
            tmp,
            "detector.onnx",
            **io_spec(new),
            threshold=threshold,
            view=entry["view"],
            min_side=int(det.min_size),
            parity=parity.to_dict(),
            **kept,
        )
        manifest["regraph"] = {
            "created": mf.now(),
            "from_sha256": entry.get("sha256"),
            "max_score_change": moved,
            "exporter": {"torch": torch.__version__, "onnx": onnx.__version__},
        }
        manifest["variants"], manifest["variants_skipped"] = {}, {}
        manifest.pop("variant_eval", None)
        run = TrainedRun(
            run_dir=models,
            generator=None,  # type: ignore[arg-type]  # _variants reads the detector side only
            detector=det,
            work_size=int(manifest.get("colorizer", {}).get("work_size", 256)),
            threshold=threshold,
            view=view,
        )
        if variants:
            _variants(run, tmp, manifest, calib, calib_count, say, 1.5)
        else:
            manifest["variants_skipped"] = dict.fromkeys(
                ("detector_int8", "detector_fp16"), "--no-variants"
            )
        mf.write(tmp, manifest)
    return mf.clean(manifest)


__all__ = ["SCORE_BOUND", "head_from_graph", "read_models", "regraph_models", "sample_tiles"]
