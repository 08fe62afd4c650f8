"""torch -> ONNX for the two graphs, with the imgcheck metadata and the IO description.

Exporter: `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript). It gives a clean
graph with symbolic N/H/W (the patch map's size comes out as `((H//8)) - 2`), lowers
bilinear+antialias resize to opset-18 `Resize(antialias=1)`, and constant-folds the colour
matrices. The model is saved in one file (no external data) and passes `onnx.checker`
with `full_check` (strict shape inference).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from imgcheck.errors import first_line
from imgcheck.export.errors import ExportError
from imgcheck.export.graphs import ColorizerGraph, DetectorGraph

DEFAULT_OPSET = 18  # the first opset whose Resize has `antialias`
COLORIZER_IO = (["image"], ["colorized"])
DETECTOR_IO = (["image"], ["score", "patch_map"])


def _export(
    module: torch.nn.Module,
    sample: torch.Tensor,
    names: tuple[list[str], list[str]],
    opset: int,
) -> onnx.ModelProto:
    """Trace `module(sample)` with dynamic N, H, W on the uint8 NHWC input."""
    dims = {0: torch.export.Dim("N"), 1: torch.export.Dim("H"), 2: torch.export.Dim("W")}
    chatter = io.StringIO()
    logger = logging.getLogger("torch.onnx")  # "torchvision is not installed" notices
    level = logger.level
    try:
        with (
            torch.no_grad(),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(chatter),
        ):
            warnings.simplefilter("ignore")
            logger.setLevel(logging.ERROR)
            program = torch.onnx.export(
                module.eval(),
                (sample,),
                dynamo=True,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes={"image": dims},
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        tail = chatter.getvalue().strip().splitlines()[-3:]
        raise ExportError(
            f"torch.onnx.export failed for {type(module).__name__}: "
            f"{first_line(exc)}"
            + (f" ({' | '.join(tail)})" if tail else "")
        ) from exc
    finally:
        logger.setLevel(level)
    model = program.model_proto
    strip_debug_info(model)
    return model


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop the exporter's per-node/per-value metadata (FX nodes, Python stack traces with
    local source paths): most of a small model's bytes, and nothing the runtime uses."""
    graph = model.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.value_info]:
        del item.metadata_props[:]
    del model.metadata_props[:]


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Add or replace model-level metadata_props (what ORT's custom_metadata_map shows)."""
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=str(value))


def export_colorizer(
    generator: torch.nn.Module, work_size: int, opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    graph = ColorizerGraph(generator, work_size)
    # Odd, non-square, non-work_size sample: nothing gets specialised to it.
    sample = torch.randint(0, 256, (2, 37, 45, 3), dtype=torch.uint8)
    model = _export(graph, sample, COLORIZER_IO, opset)
    model.doc_string = (
        "imgcheck colorizer: uint8 RGB NHWC (colour or grey, any N, H, W >= 1) -> colorized "
        f"uint8 RGB NHWC of the same size. Chroma predicted at {work_size}x{work_size}, "
        "upsampled and re-attached to the full-resolution CIELAB L."
    )
    set_metadata(model, {"imgcheck.kind": "colorizer", "imgcheck.work_size": str(work_size)})
    return model


def export_detector(
    discriminator: torch.nn.Module,
    threshold: float,
    view: dict[str, Any],
    crop: int,
    opset: int = DEFAULT_OPSET,
) -> onnx.ModelProto:
    graph = DetectorGraph(discriminator)
    sample = torch.randint(0, 256, (2, crop + 3, crop + 5, 3), dtype=torch.uint8)
    model = _export(graph, sample, DETECTOR_IO, opset)
    model.doc_string = (
        "imgcheck detector: uint8 RGB NHWC view crops (any N, H, W >= 32) -> score float32 [N] "
        "(probability colorized) and patch_map float32 [N, h, w]."
    )
    set_metadata(
        model,
        {
            "imgcheck.kind": "detector",
            "imgcheck.threshold": repr(float(threshold)),
            "imgcheck.view": json.dumps(view, sort_keys=True),
        },
    )
    return model


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """One self-contained file; then the full checker on what is on disk."""
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ExportError(f"{path.name}: initializer {init.name} refers to external data")
    try:
        onnx.save_model(model, str(path), save_as_external_data=False)
        onnx.checker.check_model(str(path), full_check=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    except Exception as exc:
        raise ExportError(f"{path.name} fails onnx.checker: {str(exc).strip()[:300]}") from exc


def _dtype(elem_type: int) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    dims = value.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def io_spec(model: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Manifest `inputs`/`outputs`: name, dtype, shape (symbolic dims as strings)."""
    initializers = {i.name for i in model.graph.initializer}

    def describe(values: Any) -> list[dict[str, Any]]:
        return [
            {"name": v.name, "dtype": _dtype(v.type.tensor_type.elem_type), "shape": _shape(v)}
            for v in values
            if v.name not in initializers
        ]

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}
