"""Measuring detector variants the way scan uses them: image AUC through the view, and speed.

An image's score is `aggregate` over the detector scores of its `make_views` crops, exactly as
`imgcheck scan` computes it, so the AUC here is the AUC a user gets. Fakes are the validation
photos colorized by the exported colorizer (greyed in-graph), like the trainer's classifier
phase makes them with `colorize_full`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgcheck.inputs import iter_inputs
from imgcheck.metrics import roc_auc
from imgcheck.trainer.data import load_rgb as _load_rgb
from imgcheck.view import ViewSpec, aggregate, make_views

MAX_AUC_DROP = 0.005


def load_rgb(path: Path, max_side: int) -> np.ndarray:
    """An image file as uint8 RGB at the trainer's scale (its own loader, so the scale matches)."""
    return np.asarray(_load_rgb(path, max_side))


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, found the way `imgcheck scan` finds them, sorted."""
    return sorted(Path(i.path) for i in iter_inputs([str(folder)]) if i.error is None)


def validation_images(run_dir: Path) -> list[Path]:
    """The `val` list of `RUN_DIR/split.json`: paths relative to its `root` (as the trainer
    writes it), else absolute, or relative to the run folder or the working directory."""
    try:
        split = json.loads((Path(run_dir) / "split.json").read_text(encoding="utf-8"))
        val = split.get("val", [])
    except (OSError, ValueError, AttributeError):
        return []
    roots = [Path(run_dir), Path.cwd()]
    if isinstance(split.get("root"), str):
        roots.insert(0, Path(split["root"]))
    found = []
    for entry in val if isinstance(val, list) else []:
        name = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            continue
        path = Path(name)
        candidates = [path] if path.is_absolute() else [r / path for r in roots]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is not None:
            found.append(hit)
    return found


def view_crops(images: Sequence[np.ndarray], view: ViewSpec) -> tuple[np.ndarray, list[int]]:
    """All view crops of all images, stacked, and how many belong to each image."""
    crops, counts = [], []
    for arr in images:
        c, _ = make_views(Image.fromarray(arr), view)
        crops.append(c)
        counts.append(len(c))
    return np.concatenate(crops), counts


def crop_scores(session: Any, crops: np.ndarray, batch: int = 16) -> np.ndarray:
    out = [
        session.run(["score"], {"image": crops[i : i + batch]})[0]
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out).astype(np.float64)


def image_scores(scores: np.ndarray, counts: list[int], how: str = "mean") -> np.ndarray:
    bounds = np.cumsum([0, *counts])
    return np.array([aggregate(scores[a:b], how) for a, b in itertools.pairwise(bounds)])


def colorize(session: Any, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each image through the colorizer graph (batch 1: sizes differ)."""
    return [session.run(["colorized"], {"image": arr[None]})[0][0] for arr in images]


def throughput(session: Any, crops: np.ndarray, batch: int = 16, seconds: float = 1.5) -> float:
    """Crops per second at `batch`, after one warm-up run; repeats until `seconds` have passed."""
    data = crops[:batch]
    if len(data) < batch:
        data = np.concatenate([data] * (batch // max(len(data), 1) + 1))[:batch]
    session.run(["score"], {"image": data})
    done, start = 0, time.perf_counter()
    while True:
        session.run(["score"], {"image": data})
        done += len(data)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and done >= 3 * len(data):
            return done / elapsed


def eval_set(
    real: Sequence[np.ndarray], fakes: Sequence[np.ndarray], view: ViewSpec
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """View crops of real then fake images, crops per image, image labels (1 = colorized)."""
    crops_r, counts_r = view_crops(real, view)
    crops_f, counts_f = view_crops(fakes, view)
    labels = np.array([0] * len(real) + [1] * len(fakes))
    return np.concatenate([crops_r, crops_f]), counts_r + counts_f, labels


def calibration_batches(crops: np.ndarray, limit: int = 256, batch: int = 8) -> list[np.ndarray]:
    """Up to `limit` crops spread evenly over the set (so real and fake both), in batches."""
    pick = np.linspace(0, len(crops) - 1, num=min(limit, len(crops))).round().astype(int)
    return [crops[pick[i : i + batch]] for i in range(0, len(pick), batch)]


def measure(
    files: dict[str, Path],
    crops: np.ndarray,
    counts: list[int],
    labels: np.ndarray,
    batch: int = 16,
    seconds: float = 1.5,
    use_cuda: bool | None = None,
    threads: int | None = None,
    how: str = "mean",
) -> dict[str, dict[str, float]]:
    """AUC/speed of fp32, int8 and fp16 (whichever `files` has), each where it is meant to run.

    `how`: the view's `aggregate`, so image scores are the ones scan computes.

    int8 is compared with fp32 on the CPU provider. fp16 is compared with fp32 on CUDA when this
    onnxruntime has it (reported as `fp32_cuda` too); otherwise on CPU, where its speed says
    nothing about a GPU (the `provider` field tells which).
    """
    from imgcheck.session import Device, available_providers, create_session

    if use_cuda is None:
        use_cuda = "CUDAExecutionProvider" in available_providers()
    cpu = {k: create_session(files[k], Device.CPU, threads) for k in files if k != "fp16"}
    if "fp16" in files and not use_cuda:
        cpu["fp16"] = create_session(files["fp16"], Device.CPU, threads)
    results = compare(cpu, crops, counts, labels, batch, seconds, how)
    if "fp16" in files and use_cuda:
        gpu = {k: create_session(files[k], Device.CUDA, threads) for k in ("fp32", "fp16")}
        on_gpu = compare(gpu, crops, counts, labels, batch, seconds, how)
        results["fp32_cuda"], results["fp16"] = on_gpu["fp32"], on_gpu["fp16"]
    return results


def compare(
    sessions: dict[str, Any],
    crops: np.ndarray,
    counts: list[int],
    labels: np.ndarray,
    batch: int = 16,
    seconds: float = 1.5,
    how: str = "mean",
) -> dict[str, dict[str, float]]:
    """AUC and crops/s for each session; `fp32` must be among them (the reference)."""
    results, scores = {}, {}
    for name, session in sessions.items():
        scores[name] = image_scores(crop_scores(session, crops, batch), counts, how)
        results[name] = {
            "auc": roc_auc(labels, scores[name]),
            "crops_per_s": throughput(session, crops, batch, seconds),
            "provider": session.get_providers()[0],
        }
    ref = results["fp32"]
    for name, res in results.items():
        res["auc_delta"] = res["auc"] - ref["auc"]
        res["speed_ratio"] = res["crops_per_s"] / ref["crops_per_s"]
        res["max_score_diff"] = float(np.abs(scores[name] - scores["fp32"]).max())
    return results
