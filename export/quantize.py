"""Detector variants: int8 (CPU, static QDQ, per-channel) and fp16 (CUDA), IO unchanged.

Both keep the colour conversion in float32 and touch only the network between the first and the
last Conv: the detector's evidence is small chroma differences, and quantising the Lab math
(where `ab` is a difference of cube roots) would bury exactly that signal.

- int8: `onnxruntime.quantization.quantize_static`, QDQ format, per-channel symmetric int8
  weights, uint8 activations, MinMax calibration on view crops of validation images (real and
  colorized). Only `Conv` is quantised; ORT fuses DQ->Conv->Q into integer convolutions.
- fp16: a small converter written here (onnxconverter-common is not a dependency, and
  onnxruntime.transformers.float16 with a block list round-trips every blocked tensor through
  fp16 Casts, which would degrade the colour math it was meant to protect). Initializers of the
  region become fp16; Casts are placed only on the tensors that enter or leave the region.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from imgcheck.export.errors import ExportError

# Op inputs that must stay float32 whatever the data type (ONNX type constraints).
_FLOAT32_ONLY_INPUTS = {"Resize": {1, 2}}  # roi, scales


def network_region(model: onnx.ModelProto) -> set[int]:
    """Indices of nodes that lie on a path from a Conv to a Conv (the network, not the colour math)."""
    nodes = list(model.graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            consumers.setdefault(name, []).append(i)
    after: set[int] = set()  # nodes downstream of (or being) a Conv; nodes are topo-sorted
    for i, n in enumerate(nodes):
        if n.op_type == "Conv" or any(producer.get(x) in after for x in n.input):
            after.add(i)
    before: set[int] = set()  # nodes upstream of (or being) a Conv
    for i in reversed(range(len(nodes))):
        n = nodes[i]
        if n.op_type == "Conv" or any(c in before for o in n.output for c in consumers.get(o, [])):
            before.add(i)
    return after & before


def _topo_sort(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(x in ready for x in n.input)]
        done = [n for n in pending if all(x in ready for x in n.input)]
        if not done:
            raise ExportError("fp16 conversion left a cycle or a dangling input in the graph")
        for n in done:
            ready.update(n.output)
        ordered.extend(done)
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 network region, float32 colour math and IO (see the module docstring)."""
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.input})
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.output})
    inits = {i.name: i for i in graph.initializer}
    types.update({name: i.data_type for name, i in inits.items()})
    region = network_region(model)
    nodes = list(graph.node)
    inside = {out for i in region for out in nodes[i].output if out}
    is_float = lambda name: types.get(name) == TensorProto.FLOAT  # noqa: E731

    casts: list[onnx.NodeProto] = []
    half: dict[str, str] = {}  # float32 name -> its fp16 twin

    def fp16_of(name: str) -> str:
        if name not in half:
            twin = f"{name}__fp16"
            if name in inits:
                arr = numpy_helper.to_array(inits[name]).astype(np.float16)
                graph.initializer.append(numpy_helper.from_array(arr, twin))
            else:
                casts.append(onnx.helper.make_node("Cast", [name], [twin], to=TensorProto.FLOAT16))
            half[name] = twin
        return half[name]

    for i in sorted(region):
        node = nodes[i]
        keep32 = _FLOAT32_ONLY_INPUTS.get(node.op_type, set())
        for k, name in enumerate(node.input):
            if name and k not in keep32 and is_float(name) and name not in inside:
                node.input[k] = fp16_of(name)
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                arr = numpy_helper.to_array(attr.t).astype(np.float16)
                attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))

    # Float outputs of the region that are read outside it: fp16 inside, Cast back to float32.
    outside_reads = {x for j, n in enumerate(nodes) if j not in region for x in n.input}
    outside_reads |= {o.name for o in graph.output}
    for i in sorted(region):
        node = nodes[i]
        for k, name in enumerate(node.output):
            if not (name and is_float(name)):
                continue
            twin = f"{name}__fp16"
            node.output[k] = twin
            for j in region:
                other = nodes[j]
                for m, x in enumerate(other.input):
                    if x == name:
                        other.input[m] = twin
            if name in outside_reads:
                casts.append(onnx.helper.make_node("Cast", [twin], [name], to=TensorProto.FLOAT))

    graph.node.extend(casts)
    used = {x for n in graph.node for x in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    _topo_sort(graph)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


class _Batches:
    """onnxruntime CalibrationDataReader over uint8 NHWC batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._it = iter([{"image": b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def to_int8(model_path: Path, out_path: Path, calibration: list[np.ndarray]) -> None:
    """Static QDQ int8 of the Convs, calibrated on `calibration` (uint8 NHWC batches)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ExportError("int8 quantisation needs calibration images")
    with tempfile.TemporaryDirectory(prefix="imgcheck-int8-") as scratch:
        pre = Path(scratch) / "pre.onnx"
        quant_pre_process(str(model_path), str(pre))
        reader = _Batches(calibration)
        quantize_static(
            str(pre),
            str(out_path),
            reader,  # type: ignore[arg-type]  # duck-typed CalibrationDataReader
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )


def build_variants(fp32: Path, folder: Path, calibration: list[np.ndarray]) -> dict[str, Path]:
    """detector.int8.onnx and detector.fp16.onnx next to `fp32` in `folder`, with its metadata."""
    from imgcheck.export.onnx_export import save_model, set_metadata

    base = onnx.load(str(fp32))
    meta = {p.key: p.value for p in base.metadata_props}
    files = {"int8": folder / "detector.int8.onnx", "fp16": folder / "detector.fp16.onnx"}
    to_int8(fp32, files["int8"], calibration)
    save_model(to_fp16(base), files["fp16"])
    for name, path in files.items():
        model = onnx.load(str(path))
        set_metadata(model, {**meta, "imgcheck.variant": name})
        save_model(model, path)
    return files
