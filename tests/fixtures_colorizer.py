"""A tiny fake colorizer that follows the `colorizer.onnx` contract, built with onnx.helper.

No torch and no trained weights: the graph greys the input (BT.601 weights, the way the real
graph greys to CIELAB L) and adds a fixed tint, so tests can tell "was greyed" (equal input
channels give the same output as the colour original) and "was colorized" (the tint) apart.
It takes uint8 [N, H, W, 3] and returns uint8 [N, H, W, 3] at the input's size, like the real one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

TINT = (24.0, 0.0, -24.0)  # added to the grey value per output channel: a warm sepia-ish cast
WORK_SIZE = 16


def colorizer_model_bytes(
    tint: tuple[float, float, float] = TINT, kind: str = "colorizer"
) -> bytes:
    """Serialized ONNX model: image uint8 [N,H,W,3] -> colorized uint8 [N,H,W,3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([0.299, 0.587, 0.114], np.float32), "weights")
    axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
    tint_t = numpy_helper.from_array(np.array(tint, np.float32) + 0.5, "tint")  # +0.5: round
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(255.0, np.float32), "hi")
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "weights"], ["xw"]),
        helper.make_node("ReduceSum", ["xw", "axes"], ["grey"], keepdims=1),
        helper.make_node("Add", ["grey", "tint"], ["tinted"]),
        helper.make_node("Clip", ["tinted", "lo", "hi"], ["clipped"]),
        helper.make_node("Cast", ["clipped"], ["colorized"], to=TensorProto.UINT8),
    ]
    dims = ["N", "H", "W", 3]
    graph = helper.make_graph(
        nodes,
        "fake_colorizer",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, dims)],
        [helper.make_tensor_value_info("colorized", TensorProto.UINT8, dims)],
        initializer=[weights, axes, tint_t, lo, hi],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    helper.set_model_props(model, {"imgcheck.kind": kind, "imgcheck.work_size": str(WORK_SIZE)})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def expected_colorized(rgb: np.ndarray, tint: tuple[float, float, float] = TINT) -> np.ndarray:
    """What the fake model returns for an (H, W, 3) uint8 array: lets tests check pixels."""
    grey = (rgb.astype(np.float32) * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1)
    out = grey[..., None] + np.array(tint, np.float32) + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)


def write_colorizer_file(path: Path, **kwargs: object) -> Path:
    """A bare `.onnx` file, as given with `--model FILE.onnx`."""
    path.write_bytes(colorizer_model_bytes(**kwargs))  # type: ignore[arg-type]
    return path


def write_colorizer_folder(folder: Path, corrupt: bool = False) -> Path:
    """A model folder with manifest.json and its sha256, as `imgcheck export` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    data = colorizer_model_bytes()
    (folder / "colorizer.onnx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    if corrupt:
        (folder / "colorizer.onnx").write_bytes(data[:-7] + b"garbage")
    io = {"name": "image", "dtype": "uint8", "shape": ["N", "H", "W", 3]}
    manifest = {
        "imgcheck_manifest": 1,
        "version": "0.1.0",
        "created": "2024-01-01T00:00:00Z",
        "opset": 18,
        "colorizer": {
            "file": "colorizer.onnx",
            "sha256": digest,
            "inputs": [io],
            "outputs": [{**io, "name": "colorized"}],
            "work_size": WORK_SIZE,
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
