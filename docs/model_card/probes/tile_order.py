"""Would scoring content-rich tiles first let more real photos stop early? (MODEL_CARD "Which
tiles first").

The 153 validation photos and three colorized versions of each (a sepia tint, chroma at 1/8
size, our colorizer; `benchmarks/bench_cascade.py`'s families), saved JPEG q90, cut through the
shipped view; every tile scored by the shipped detector. Then the shipped cascade (its stage
thresholds as they are, not recalibrated) is replayed with the tiles in other orders: tiles
per image, share stopped early, and detections (at the shipped threshold) a stop would lose.
Round 2, stop 24, from the repository root in the dev venv:
`python docs/model_card/probes/tile_order.py` (PHOTOS as in band_probe.py).
"""

import hashlib
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from bench_cascade import _lowres_chroma, _ours, _tint

from imgcheck.cascade import Cascade, stops, tile_order
from imgcheck.models import resolve
from imgcheck.session import Device, create_session
from imgcheck.trainer.data import is_val
from imgcheck.view import ViewSpec, aggregate, make_views

PHOTOS = Path(os.environ.get("PHOTOS", "../shared/photos"))
FAMILIES = {"real": lambda im: im, "tint": _tint, "lowres": _lowres_chroma, "ours": _ours}

info = resolve("detector")
spec = ViewSpec.from_dict(info.view)
cascade = Cascade.from_manifest(info.meta["cascade"])
assert cascade is not None
sess = create_session(Path(info.path), Device.CPU, 2)
val = [
    p
    for r in ("train", "extra")
    for p in sorted((PHOTOS / r).glob("*.jpg"))
    if is_val(hashlib.sha256(p.read_bytes()).hexdigest(), 20)
]


def orders(tiles: np.ndarray) -> dict[str, np.ndarray]:
    t = tiles[:, ::2, ::2].astype(np.float32)
    luma = (t @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(len(t), -1).std(1)
    spread = (t.max(-1) - t.min(-1)).reshape(len(t), -1).mean(1)
    return {
        "scan order": np.array(tile_order(len(t))),
        "luma std": np.argsort(-luma, kind="stable"),
        "luma std + spread": np.argsort(-(luma**2 + spread**2), kind="stable"),
        "spread": np.argsort(-spread, kind="stable"),
        "random": np.random.default_rng(0).permutation(len(t)),
    }


def tiles_used(probs: np.ndarray) -> tuple[int, bool]:
    for k, thr in cascade.stages:
        if stops(probs, len(probs), k, thr, spec.aggregate):
            return k, True
    return len(probs), False


for family, make in FAMILIES.items():
    used: dict[str, list[tuple[int, bool]]] = {}
    flagged = []
    for p in val:
        buf = io.BytesIO()
        make(Image.open(p).convert("RGB")).save(buf, "JPEG", quality=90)
        tiles, _ = make_views(Image.open(buf).convert("RGB"), spec)
        probs = sess.run(None, {"image": tiles})[0].astype(np.float64)
        flagged.append(aggregate(probs, spec.aggregate) >= info.threshold)
        for name, order in orders(tiles).items():
            used.setdefault(name, []).append(tiles_used(probs[order]))
    hit = np.array(flagged)
    print(f"{family}: {len(val)} images, {hit.mean():.1%} flagged")
    for name, got in used.items():
        n = np.array([k for k, _ in got])
        stop = np.array([s for _, s in got])
        print(
            f"  {name:18s} {n.mean():5.2f} tiles, {stop.mean():.1%} stopped early, "
            f"{int((stop & hit).sum())} of {int(hit.sum())} detections lost"
        )
