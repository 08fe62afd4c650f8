"""Parity: the exported ONNX graphs against the PyTorch pipeline they were traced from.

Bounds (fp32 graphs, CPU execution provider, the runtime's session settings):
- detector `score` and `patch_map` (probabilities in [0, 1]): max |ORT - torch| <= 1e-4.
- colorizer network output `ab` (normalised chroma in [-1, 1], the U-Net's tanh, read out of
  a copy of the shipped graph with that tensor added as an output): <= 1e-4.
- colorizer RGB before quantisation (in [0, 1], the input of the graph's `Round` / 255):
  <= 2e-3. Not 1e-4: torch fp32 and ORT fp32 each sit about 1e-5 (normalised ab) from a
  float64 evaluation of the default U-Net (different conv/accumulation order, not an export
  error), and the graph then scales ab by 110 and maps it to sRGB with a slope of up to
  ~0.36 per ab unit (the sRGB curve near black), so ~6e-4 is plain fp32 noise there. 2e-3
  is 0.51 of a uint8 level.
- colorizer `colorized` (uint8): <= 1 level, which follows from the float bound (< 1 level
  can only flip the rounding of a value near a .5 boundary, by one).
- tiny colorizer inputs (a side < 8 px, e.g. 1x1): all of the above except `ab`. Upscaled to
  work_size they are (nearly) flat, and GroupNorm over near-constant features divides fp32
  rounding noise by sqrt(eps) ~ 3e-3 in both frameworks, so `ab` there is ill-conditioned
  (about 1e-3 apart); the RGB output still agrees to ~1e-4. These cases prove the any-size
  path (H, W >= 1) works, not the network's precision.

Cases: uniform noise (the whole RGB cube) and photo-like images, greyed photos for the
colorizer, several batch sizes and odd, non-square sizes, so dynamic N/H/W are exercised.
The forensic detector is also checked on flat and near-flat images (white, black, grey, one
colour; and those with +-1 level of noise: a product shot's background): its features divide
by tiny energies there, and an export that loses an eps gives a different score only on such
tiles (round 2, stop 19: a white tile scored 0.74 in the graph and 0.27 in torch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch

from imgcheck.export.errors import ParityError
from imgcheck.export.graphs import ColorizerGraph, DetectorGraph
from imgcheck.export.samples import flat_images, natural_images, noise_images, to_grey
from imgcheck.session import Device, create_session
from imgcheck.trainer.detector_head import ForensicDetector

FLOAT_BOUND = 1e-4
RGB_FLOAT_BOUND = 2e-3
UINT8_BOUND = 1
TINY = 8  # colorizer inputs with a side below this are checked without the `ab` bound


@dataclass
class Parity:
    """Max abs differences per output over all cases, and the per-case detail."""

    model: str
    bounds: dict[str, float]
    max_abs: dict[str, float] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: str, shape: tuple[int, ...], diffs: dict[str, float]) -> None:
        self.cases.append({"case": case, "shape": list(shape), "max_abs": diffs})
        for name, value in diffs.items():
            self.max_abs[name] = max(self.max_abs.get(name, 0.0), value)

    @property
    def failures(self) -> list[str]:
        return [
            f"{c['case']} {c['shape']}: {name} differs by {value:.3g} (bound {self.bounds[name]:g})"
            for c in self.cases
            for name, value in c["max_abs"].items()
            if not value <= self.bounds[name]  # NaN fails too
        ]

    def check(self) -> Parity:
        if self.failures:
            shown = "; ".join(self.failures[:3])
            raise ParityError(f"{self.model}: ONNX Runtime does not match PyTorch: {shown}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "bounds": self.bounds,
            "max_abs": {k: float(f"{v:.3g}") for k, v in self.max_abs.items()},
            "cases": len(self.cases),
            "provider": "cpu",
        }


def _images(
    shapes: Iterable[tuple[int, int, int]], grey: bool, seed: int = 0
) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for n, h, w in shapes:
        out.append(("noise", noise_images(rng, n, h, w)))
        photos = natural_images(rng, n, h, w)
        out.append(("photo", photos))
        if grey:
            out.append(("grey photo", to_grey(photos)))
    return out


def with_outputs(model: onnx.ModelProto, tensors: list[str]) -> bytes:
    """A copy of `model` that also outputs the float `tensors` (shapes left symbolic)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in tensors:
        copy.graph.output.append(
            onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None)
        )
    return copy.SerializeToString()


def _only(model: onnx.ModelProto, op_type: str, what: str) -> onnx.NodeProto:
    nodes = [n for n in model.graph.node if n.op_type == op_type]
    if len(nodes) != 1:
        raise ParityError(f"colorizer graph has {len(nodes)} {op_type} nodes, expected 1 ({what})")
    return nodes[0]


def pre_round_tensor(model: onnx.ModelProto) -> str:
    """The colorizer's float RGB*255 (N, 3, H, W): the input of its one `Round`."""
    return _only(model, "Round", "uint8 quantisation").input[0]


def ab_tensor(model: onnx.ModelProto) -> str | None:
    """The regression U-Net's normalised ab at work_size before its decode gain: the output of
    its one `Tanh` (the head). The bins head has no single such tensor (its decode is a
    softmax-weighted sum): None, and the parity check relies on the colorized output alone."""
    if not any(n.op_type == "Tanh" for n in model.graph.node):
        return None
    return _only(model, "Tanh", "U-Net head").output[0]


def colorizer_shapes(work_size: int) -> list[tuple[int, int, int]]:
    return [
        (1, work_size, work_size),
        (2, 37, 53),
        (3, work_size + 13, 2 * work_size - 7),
        (1, 1, 1),
        (2, 2, 5),
    ]


def detector_shapes(crop: int, min_side: int = 32) -> list[tuple[int, int, int]]:
    """Batches to verify on: the smallest input the detector accepts, the view's crop, odd sizes."""
    odd = (max(min_side, 45), max(min_side + 13, 77))
    return [(1, min_side, min_side), (2, crop, crop), (3, *odd), (4, crop + 8, crop)]


def verify_colorizer(
    generator: torch.nn.Module,
    work_size: int,
    model: onnx.ModelProto,
    shapes: list[tuple[int, int, int]] | None = None,
) -> Parity:
    bounds = {"ab": FLOAT_BOUND, "colorized_float": RGB_FLOAT_BOUND, "colorized": UINT8_BOUND}
    parity = Parity("colorizer", bounds)
    ref_u8 = ColorizerGraph(generator, work_size).eval()
    ref_f = ColorizerGraph(generator, work_size, float_output=True).eval()
    pre, ab = pre_round_tensor(model), ab_tensor(model)
    gain = float(getattr(getattr(generator, "cfg", None), "gain", 1.0))
    extra = [pre] if ab is None else [pre, ab]
    session = create_session(with_outputs(model, extra), Device.CPU)
    captured: list[np.ndarray] = []
    hook = generator.register_forward_hook(lambda m, i, o: captured.append(o.numpy()))
    try:
        for case, batch in _images(shapes or colorizer_shapes(work_size), grey=True):
            outs = session.run(["colorized", *extra], {"image": batch})
            got_u8, pre_255 = outs[0], outs[1]
            got_ab = outs[2] if ab is not None else None
            captured.clear()
            with torch.no_grad():
                x = torch.from_numpy(batch)
                want_u8, want_f = ref_u8(x).numpy(), ref_f(x).numpy()
            want_ab = captured[-1] if ab is not None else None
            n, h, w, _ = batch.shape
            if pre_255.shape == (n, 3, h, w):
                pre_255 = pre_255.transpose(0, 2, 3, 1)
            if got_u8.dtype != np.uint8 or got_u8.shape != batch.shape:
                raise ParityError(
                    f"colorizer output has dtype {got_u8.dtype} shape {got_u8.shape} "
                    f"for input {batch.shape}"
                )
            if pre_255.shape != batch.shape or (
                got_ab is not None and got_ab.shape != want_ab.shape
            ):
                raise ParityError(
                    f"colorizer internals have shapes {pre_255.shape}, {got_ab.shape}; "
                    f"expected {batch.shape}, {want_ab.shape}"
                )
            diff_u8 = np.abs(got_u8.astype(np.int16) - want_u8.astype(np.int16))
            diffs = {
                "colorized_float": float(np.abs(pre_255 / 255.0 - want_f).max()),
                "colorized": int(diff_u8.max()),
            }
            if min(h, w) >= TINY and got_ab is not None:
                # The Tanh is the head before the decode gain; the forward hook sees after it.
                diffs["ab"] = float(np.abs(got_ab * gain - want_ab).max())
            parity.add(case + (" (tiny)" if min(h, w) < TINY else ""), batch.shape, diffs)
    finally:
        hook.remove()
    return parity.check()


def verify_detector(
    discriminator: torch.nn.Module,
    model: onnx.ModelProto | bytes,
    shapes: list[tuple[int, int, int]],
    bound: float = FLOAT_BOUND,
    flat: bool = True,
) -> Parity:
    """`flat`: add the flat-tile case for a forensic detector (off only to read back graphs
    exported before it existed, whose flat tiles are known to differ: `export.regraph`)."""
    parity = Parity("detector", {"score": bound, "patch_map": bound})
    ref = DetectorGraph(discriminator).eval()
    data = model if isinstance(model, bytes) else model.SerializeToString()
    session = create_session(data, Device.CPU)
    cases = _images(shapes, grey=False)
    if flat and isinstance(discriminator, ForensicDetector):
        rng = np.random.default_rng(1)
        _, h, w = shapes[1] if len(shapes) > 1 else shapes[0]
        cases += [("flat", flat_images(rng, 8, h, w))]
    for case, batch in cases:
        score, patch = session.run(["score", "patch_map"], {"image": batch})
        with torch.no_grad():
            want_s, want_p = (t.numpy() for t in ref(torch.from_numpy(batch)))
        if score.shape != want_s.shape or patch.shape != want_p.shape:
            raise ParityError(
                f"detector output shapes {score.shape}, {patch.shape} != "
                f"torch {want_s.shape}, {want_p.shape}"
            )
        parity.add(
            case,
            batch.shape,
            {
                "score": float(np.abs(score - want_s).max()),
                "patch_map": float(np.abs(patch - want_p).max()),
            },
        )
    return parity.check()
