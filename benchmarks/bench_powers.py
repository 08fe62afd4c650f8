"""Colour powers in ONNX Runtime: Pow vs exp(p log x), alone and in the whole feature graph.

sRGB -> Lab (`trainer/colour.py`) raises every pixel to 2.4 (linearisation) and to 1/3 (Lab's
cube root). ONNX Runtime's Pow with a fractional exponent is a scalar std::pow per element,
while Exp and Log are vectorised, so `colour._pow` writes x ** p as exp(p log x). This times
both formulations in one run, interleaved: each power alone on (batch, 3, 128, 128) maps, then
the whole forensic feature graph (`tile_features`) built once with `torch.pow` (the formulation
before 2026-12-01) and once as shipped, on the same real 128-px tiles, with the paired ratio of
the rounds and the largest relative difference of the features.

    python benchmarks/bench_powers.py [--batch 32] [--rounds 24] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from bench_box import Fn, session, tiles

from imgcheck.trainer import colour
from imgcheck.trainer.forensics import tile_features


def _torch_pow(x: torch.Tensor, p: float) -> torch.Tensor:
    return x.pow(p)


class Features(torch.nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tile_features(image.permute(0, 3, 1, 2).to(torch.float32) / 255.0)


def interleaved(sessions: dict, x: np.ndarray, rounds: int) -> tuple[dict, np.ndarray]:
    """Median seconds per session over `rounds` alternating rounds, and the paired ratios
    (second / first) of each round: this VM's speed drifts by 10-20 % between rounds."""
    import time

    names = list(sessions)
    for s in sessions.values():
        s.run(None, {"x": x})
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            sessions[n].run(None, {"x": x})
            times[n].append(time.perf_counter() - start)
    ratios = np.array(times[names[1]]) / np.array(times[names[0]])
    return {n: float(np.median(t)) for n, t in times.items()}, ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    maps = torch.rand(args.batch, 3, 128, 128) * 0.95 + 0.05
    for p in (2.4, 1.0 / 3.0):
        found, ratios = interleaved(
            {
                "Pow": session(Fn(_torch_pow, p), maps, args.threads),
                "exp(p log x)": session(Fn(colour._pow, p), maps, args.threads),
            },
            maps.numpy(),
            args.rounds,
        )
        print(
            f"x ** {p:.3g} on {args.batch} x 3 maps of 128 px: Pow {found['Pow'] * 1e3:.2f} ms, "
            f"exp(p log x) {found['exp(p log x)'] * 1e3:.2f} ms; paired ratio median "
            f"{np.median(ratios):.3f}"
        )
    u8 = tiles(args.batch)
    example = torch.from_numpy(u8)
    with mock.patch.object(colour, "_pow", _torch_pow):
        before = session(Features(), example, args.threads)
    after = session(Features(), example, args.threads)
    found, ratios = interleaved({"pow": before, "exp/log": after}, u8, args.rounds)
    ref, feats = before.run(None, {"x": u8})[0], after.run(None, {"x": u8})[0]
    # A feature's change against its spread over these tiles: what the head could notice.
    rel = np.abs(feats - ref).max(axis=0) / (ref.std(axis=0) + 1e-6)
    print(
        f"forensic features, {args.batch} tiles of 128 px: pow {found['pow'] / args.batch * 1e3:.3f}"
        f" ms per tile, exp/log {found['exp/log'] / args.batch * 1e3:.3f}; paired ratio "
        f"exp/log / pow median {np.median(ratios):.3f} (q25 {np.quantile(ratios, 0.25):.3f}, "
        f"q75 {np.quantile(ratios, 0.75):.3f}); largest feature change / that feature's spread over the tiles {rel.max():.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
