"""Any colorizer exported as an ONNX graph with imgcheck's colorizer contract.

`uint8 image [N, H, W, 3] -> uint8 colorized [N, H, W, 3]`: imgcheck 0.1's shipped regression
U-Net is one (a different design and loss from today's, bilinear chroma upsampling), and a
user can export any other colorizer to this contract and add it to the zoo.
"""

from __future__ import annotations

import numpy as np
import torch

from imgcheck.trainer.zoo import ZooColorizer, ZooContext


def build(ctx: ZooContext) -> ZooColorizer | None:
    if not ctx.onnx_colorizers:
        return None
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, ctx.threads)
    sessions = [
        ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"])
        for p in ctx.onnx_colorizers
    ]

    def colorize(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        session = sessions[int(rng.integers(len(sessions)))]
        arr = (rgb[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        out = session.run(None, {session.get_inputs()[0].name: arr[None]})[0][0]
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    return colorize
