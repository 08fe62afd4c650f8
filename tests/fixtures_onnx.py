"""A tiny fake detector that follows the `detector.onnx` contract, built with onnx.helper.

No torch and no training: the graph scores each pixel by its chroma spread (max - min of R, G, B),
averages it over `pool` x `pool` cells into a patch map, squashes it with a sigmoid centred on
`CENTRE`, and takes the mean as the image score. So a colourful image scores near 1, a
low-saturation one near 0, and tests can make "flagged" and "real" images with plain numpy.
It takes uint8 [N, H, W, 3] and returns `score` [N] and `patch_map` [N, H/pool, W/pool].
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

CENTRE = 40.0  # chroma spread (0..255) that scores 0.5
SLOPE = 8.0
#: A small view so tests run fast: images shrink to <= 128 px, four 64 px crops.
TEST_VIEW: dict[str, Any] = {"mode": "grid", "max_side": 128, "crop": 64, "grid": 2}


def detector_model_bytes(
    *,
    threshold: float | None = 0.5,
    view: dict[str, Any] | None = None,
    kind: str = "detector",
    pool: int = 16,
    input_type: str = "uint8",
    variant: str | None = None,
) -> bytes:
    """Serialized fake detector. `input_type="float"` makes a model that breaks the contract.
    `variant` ("int8", "fp16") sets the `imgcheck.variant` metadata export gives its variants
    (the graph stays the same fp32 one: enough for the runtime, which only picks the file)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: Any, dtype: Any) -> Any:
        return numpy_helper.from_array(np.array(value, dtype), name)

    inits = [
        const("ch_axis", [3], np.int64),
        const("one_axis", [1], np.int64),
        const("hw_axes", [1, 2], np.int64),
        const("centre", CENTRE, np.float32),
        const("slope", SLOPE, np.float32),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["x", "ch_axis"], ["hi"], keepdims=0),
        helper.make_node("ReduceMin", ["x", "ch_axis"], ["lo"], keepdims=0),
        helper.make_node("Sub", ["hi", "lo"], ["spread"]),
        helper.make_node("Unsqueeze", ["spread", "one_axis"], ["spread4"]),
        helper.make_node(
            "AveragePool", ["spread4"], ["cells"], kernel_shape=[pool, pool], strides=[pool, pool]
        ),
        helper.make_node("Sub", ["cells", "centre"], ["shifted"]),
        helper.make_node("Div", ["shifted", "slope"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
        helper.make_node("Squeeze", ["probs", "one_axis"], ["patch_map"]),
        helper.make_node("ReduceMean", ["patch_map", "hw_axes"], ["score"], keepdims=0),
    ]
    elem = TensorProto.UINT8 if input_type == "uint8" else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "fake_detector",
        [helper.make_tensor_value_info("image", elem, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("patch_map", TensorProto.FLOAT, ["N", "h", "w"]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    props = {"imgcheck.kind": kind, "imgcheck.view": json.dumps(view or TEST_VIEW)}
    if threshold is not None:
        props["imgcheck.threshold"] = str(threshold)
    if variant is not None:
        props["imgcheck.variant"] = variant
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_detector(path: Path, **kwargs: Any) -> Path:
    """A bare `.onnx` file (what `--model file.onnx` takes): settings come from its metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(detector_model_bytes(**kwargs))
    return path


def write_model_folder(
    folder: Path,
    *,
    threshold: float = 0.5,
    view: dict[str, Any] | None = None,
    corrupt_sha: bool = False,
    variants: tuple[str, ...] = (),
    cascade: list[tuple[int, float]] | None = None,
    **kwargs: Any,
) -> Path:
    """A model folder with `manifest.json` (what `imgcheck export` writes), sha256 included.

    `cascade`: (tiles, threshold) stages for the detector entry's `cascade` (imgcheck.cascade),
    said to be calibrated for this threshold and view.

    `variants` (e.g. `("int8",)`) also writes `detector.<name>.onnx`, a copy of the fake model
    with `imgcheck.variant` metadata, listed under the manifest's `variants` with its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    data = detector_model_bytes(threshold=threshold, view=view, **kwargs)
    (folder / "detector.onnx").write_bytes(data)
    digest = "0" * 64 if corrupt_sha else hashlib.sha256(data).hexdigest()
    manifest = {
        "imgcheck_manifest": 1,
        "version": "0.1.0",
        "created": "2026-01-01T00:00:00Z",
        "opset": 18,
        "training_data_digest": "test",
        "metrics": {},
        "detector": {
            "file": "detector.onnx",
            "sha256": digest,
            "inputs": [{"name": "image", "dtype": "uint8", "shape": ["N", "H", "W", 3]}],
            "outputs": [
                {"name": "score", "dtype": "float32", "shape": ["N"]},
                {"name": "patch_map", "dtype": "float32", "shape": ["N", "h", "w"]},
            ],
            "threshold": threshold,
            "threshold_rule": "test",
            "view": view or TEST_VIEW,
        },
    }
    if variants:
        manifest["variants"] = {}
    for name in variants:
        blob = detector_model_bytes(threshold=threshold, view=view, variant=name, **kwargs)
        (folder / f"detector.{name}.onnx").write_bytes(blob)
        manifest["variants"][f"detector_{name}"] = {
            "file": f"detector.{name}.onnx",
            "sha256": hashlib.sha256(blob).hexdigest(),
            "device": "cuda" if name == "fp16" else "cpu",
            "auc_delta": 0.0,
            "speed_ratio": 1.0,
        }
    if cascade is not None:
        manifest["detector"]["cascade"] = {
            "stages": [{"tiles": k, "threshold": t} for k, t in cascade],
            "detector_threshold": threshold,
            "view": view or TEST_VIEW,
            "calibrated_on": {"keep": 0.995},
        }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def colourful(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """An RGB array that the fake detector flags (strong chroma everywhere)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def muted(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """An RGB array with faint chroma: colour (not grayscale), but the fake detector says real."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(30, 220, (height, width), dtype=np.int16)
    tint = np.stack([grey + 12, grey, grey - 12], axis=-1)
    return np.clip(tint, 0, 255).astype(np.uint8)
