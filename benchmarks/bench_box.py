"""Window means for the forensic features: three ONNX formulations, timed in one run.

The detector's forensic features (`trainer/forensics.py`) are dozens of window means
(`guided.box_valid`, radius 1 and 2) over every detector tile, and they are most of the
detector graph's cost. This builds each formulation as its own ONNX graph and times it in ONNX
Runtime on the same maps, interleaved, with the agreement of each with the shipped one:

  - one k x k AveragePool (what `guided.box_valid` does now);
  - running sums: CumSum + Slice along each axis (the formulation before 2026-12-01);
  - separable pools: a 1 x k AveragePool, then k x 1.

Then the whole forensic feature graph (`tile_features`) on real 128-px tiles, ms per tile.

    python benchmarks/bench_box.py [--batch 48] [--rounds 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import onnxruntime as ort
    import torch
    from torch.nn import functional as F
except ModuleNotFoundError as exc:  # the train extra (torch, onnx) builds the graphs
    sys.exit(f"bench_box.py needs torch and onnx (the train extra): {exc}")

from imgcheck.trainer.forensics import tile_features
from imgcheck.trainer.guided import box_valid

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "photos" / "extra"


def running_sums(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    c = torch.cumsum(F.pad(x, (1, 0)), dim=-1)
    x = c[..., k:] - c[..., :-k]
    c = torch.cumsum(F.pad(x, (0, 0, 1, 0)), dim=-2)
    return (c[..., k:, :] - c[..., :-k, :]) / float(k * k)


def separable(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    return F.avg_pool2d(F.avg_pool2d(x, (1, k), stride=1), (k, 1), stride=1)


class Fn(torch.nn.Module):
    """One window-mean formulation as an exportable module."""

    def __init__(self, fn: Callable[..., torch.Tensor], *args: float) -> None:
        super().__init__()
        self.fn, self.args = fn, args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.args)


def session(module: torch.nn.Module, example: torch.Tensor, threads: int) -> ort.InferenceSession:
    buf = io.BytesIO()
    torch.onnx.export(
        module, (example,), buf, input_names=["x"], opset_version=18, dynamo=False,
        dynamic_axes={"x": {0: "n"}},
    )  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


def timed(sessions: dict[str, ort.InferenceSession], x: np.ndarray, rounds: int) -> dict:
    out = {name: s.run(None, {"x": x})[0] for name, s in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, {"x": x})
            times[name].append(time.perf_counter() - start)
    return {n: (float(np.median(t)), out[n]) for n, t in times.items()}


def tiles(batch: int) -> np.ndarray:
    from PIL import Image

    files = sorted(PHOTOS.glob("*.jpg"))[:batch]
    if len(files) < batch:  # no shared photos here: textured noise stands in
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (batch, 128, 128, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.open(f).convert("RGB"))[:128, :128] for f in files])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    maps = torch.randn(args.batch, 8, 128, 128)
    for radius in (1, 2):
        found = timed(
            {
                "k x k pool": session(Fn(box_valid, radius), maps, args.threads),
                "running sums": session(Fn(running_sums, radius), maps, args.threads),
                "separable pools": session(Fn(separable, radius), maps, args.threads),
            },
            maps.numpy(),
            args.rounds,
        )
        base, ref = found["k x k pool"]
        print(f"window means, radius {radius}, {args.batch} x 8 maps of 128 px:")
        for name, (t, out) in found.items():
            print(
                f"  {name:16s} {t * 1000:7.1f} ms  x{t / base:5.2f} of k x k  "
                f"max |diff| {np.abs(out - ref).max():.1e}"
            )

    class Features(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return tile_features(image.permute(0, 3, 1, 2).to(torch.float32) / 255.0)

    u8 = tiles(args.batch)
    feats = session(Features(), torch.from_numpy(u8), args.threads)
    t = timed({"features": feats}, u8, args.rounds)["features"][0]
    print(
        f"forensic features (tile_features), {args.batch} tiles of 128 px: "
        f"{t / args.batch * 1000:.2f} ms per tile"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
