"""Zoo fakes through the detector view, once per run: the classifier phase's data, on disk.

Colorizing with a dozen families is the expensive part of training the detector, and the
leave-one-family-out protocol trains it once per family, so every fake is made once and
stored as its view's forensic features (`forensics.tile_features` of `view.make_views` tiles:
exactly what the exported graph computes in scan):

    RUN/zoo/train/FAMILY.npz   matched pairs: each training photo colorized by `per_photo`
                               families drawn for it, real and fake through the same random
                               degradation (product-shot canvas, resize, blur, JPEG 4:2:0
                               or 4:4:4)
    RUN/zoo/val/real.npz       every validation photo: clean, "q75" (JPEG q75 after a 0.5x
                               resize) and "420" (re-encoded with 4:2:0 chroma, q90)
    RUN/zoo/train/real.npz     every training photo in the same three variants: scored out of
                               fold, they add to the photos the threshold is calibrated on
                               (`lofo.crossfit_real_scores`)
    RUN/zoo/val/FAMILY.npz     every validation photo colorized by FAMILY: clean and q75

Each file holds `feats` (tiles, D) float32, `image` (tiles,) row of the image table, and the
image table `photo`, `label` (1 = colorized), `variant`. A family's files are written
atomically and skipped when present, so an interrupted run resumes per family.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from imgcheck.atomic import atomic_open
from imgcheck.trainer.canvas import on_canvas
from imgcheck.trainer.data import item_rng, load_rgb, to_image, to_tensor
from imgcheck.trainer.forensics import FEATURES, tile_features
from imgcheck.trainer.zoo import ZooColorizer
from imgcheck.view import ViewSpec, make_views

VAL_VARIANTS = ("clean", "q75", "420")
# Share of training pairs composed as a product shot: the photo pasted, at 0.3-0.8 of the
# canvas side, onto a flat white, black or grey background. Catalog photos are often that, and
# the seams and flat margins were nothing the head had seen: on the 153 validation photos
# pasted at 0.35 of the side on white, run v16's head (torch features) separated real from
# colorized at AUC 0.87, run v18's, trained with these pairs, at 0.98 (MODEL_CARD).
CANVAS_SHARE = 0.15


@dataclass(frozen=True)
class Degrade:
    """One draw of what happens to an image after it is made: applied to real and fake alike."""

    scale: float = 1.0
    blur: float = 0.0
    quality: int = 0  # 0 = no re-encode
    subsampling: int = 0  # PIL: 0 = 4:4:4, 2 = 4:2:0
    canvas: float = 0.0  # photo side / canvas side; 0 = not on a canvas
    background: int = 255  # the canvas's grey level
    oval: bool = False  # pasted through a soft oval mask (a cut-out) instead of as a rectangle

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Degrade:
        scale = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.6 else 1.0
        blur = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.15 else 0.0
        r = rng.random()
        quality = int(rng.integers(60, 101)) if r < 0.8 else 0
        subsampling = 2 if r < 0.55 else 0
        # Drawn after the others, so those stay what they were for the same rng.
        canvas, background, oval = 0.0, 255, False
        if rng.random() < CANVAS_SHARE:
            canvas = float(rng.uniform(0.3, 0.8))
            g = rng.random()
            background = 255 if g < 0.6 else 0 if g < 0.75 else int(rng.integers(30, 250))
            oval = bool(rng.random() < 0.5)
        return cls(scale, blur, quality, subsampling, canvas, background, oval)

    def apply(self, image: Image.Image) -> Image.Image:
        if self.canvas:
            image = on_canvas(image, self.canvas, self.background, self.oval)
        if self.scale != 1.0:
            w, h = image.size
            size = (max(32, round(w * self.scale)), max(32, round(h * self.scale)))
            image = image.resize(size, Image.Resampling.BICUBIC)
        if self.blur:
            image = image.filter(ImageFilter.GaussianBlur(self.blur))
        if self.quality:
            buf = BytesIO()
            image.save(buf, "JPEG", quality=self.quality, subsampling=self.subsampling)
            image = Image.open(BytesIO(buf.getvalue())).convert("RGB")
        return image


VAL_DEGRADE = {
    "clean": Degrade(),
    "q75": Degrade(scale=0.5, quality=75, subsampling=2),
    "420": Degrade(quality=90, subsampling=2),
}


def view_features(image: Image.Image, spec: ViewSpec) -> np.ndarray:
    """(K, D) features of an image's view tiles: what the detector graph computes on them."""
    crops, _ = make_views(image, spec)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return tile_features(x).numpy().astype(np.float32)


def colorize_pil(fn: ZooColorizer, image: Image.Image, rng: np.random.Generator) -> Image.Image:
    with torch.no_grad():
        rgb = to_tensor(image).float().div(255).unsqueeze(0)
        return to_image(fn(rgb, rng)[0])


# --------------------------------------------------------------------- work items (in workers)

_STATE: dict[str, Any] = {}


def _init(zoo: dict[str, ZooColorizer], spec: ViewSpec, max_side: int, seed: int) -> None:
    torch.set_num_threads(1)
    _STATE.update(zoo=zoo, spec=spec, max_side=max_side, seed=seed)


def _train_item(args: tuple[int, str, str]) -> list[tuple[int, int, str, np.ndarray]]:
    index, path, family = args
    st = _STATE
    rng = item_rng(st["seed"], 7, zlib.crc32(family.encode()), index)
    real = load_rgb(path, st["max_side"])
    fake = colorize_pil(st["zoo"][family], real, rng)
    d = Degrade.draw(rng)
    return [
        (index, 0, "train", view_features(d.apply(real), st["spec"])),
        (index, 1, "train", view_features(d.apply(fake), st["spec"])),
    ]


def _val_item(args: tuple[int, str, str]) -> list[tuple[int, int, str, np.ndarray]]:
    index, path, family = args
    st = _STATE
    real = load_rgb(path, st["max_side"])
    if family == "real":
        return [
            (index, 0, v, view_features(VAL_DEGRADE[v].apply(real), st["spec"]))
            for v in VAL_VARIANTS
        ]
    rng = item_rng(st["seed"], 8, zlib.crc32(family.encode()), index)
    fake = colorize_pil(st["zoo"][family], real, rng)
    return [
        (index, 1, v, view_features(VAL_DEGRADE[v].apply(fake), st["spec"]))
        for v in ("clean", "q75")
    ]


def _save(rows: list[tuple[int, int, str, np.ndarray]], path: Path) -> None:
    width = len(FEATURES)
    feats = np.concatenate([r[3] for r in rows]) if rows else np.zeros((0, width), np.float32)
    image = np.concatenate(
        [np.full(len(r[3]), i, dtype=np.int32) for i, r in enumerate(rows)]
        or [np.zeros(0, np.int32)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            feats=feats,
            image=image,
            photo=np.array([r[0] for r in rows], dtype=np.int32),
            label=np.array([r[1] for r in rows], dtype=np.int8),
            variant=np.array([r[2] for r in rows]),
            names=np.array(FEATURES),
        )


def family_names(zoo_dir: Path, split: str) -> list[str]:
    return sorted(p.stem for p in (zoo_dir / split).glob("*.npz") if p.stem != "real")


def load_split(zoo_dir: Path, split: str, name: str) -> dict[str, np.ndarray]:
    """One stored zoo file, its `feats` columns in this imgcheck's `FEATURES` order.

    The file names its columns, so a zoo computed with more features (a superset) trains a
    head on this version's without recomputing the fakes; a zoo that lacks one is an error
    (recompute it) instead of silently misread columns."""
    path = zoo_dir / split / f"{name}.npz"
    with np.load(path) as data:
        out = {k: data[k] for k in data.files if k != "names"}
        names = [str(n) for n in data["names"]] if "names" in data.files else None
    width = out["feats"].shape[1]
    if names is None and width == len(FEATURES):
        return out  # written before the files named their columns, by this feature set
    missing = [f for f in FEATURES if f not in (names or [])]
    if missing:
        raise ValueError(
            f"{path}: its {width} feature columns are not this imgcheck's {len(FEATURES)} "
            f"(missing {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): "
            "recompute the zoo (detector_stage --zoo-only after removing RUN/zoo)"
        )
    out["feats"] = out["feats"][:, [names.index(f) for f in FEATURES]]
    return out


def assign_families(n: int, names: list[str], per_photo: int, seed: int) -> dict[str, list[int]]:
    """Family -> training photo indices; each photo gets `per_photo` distinct families.

    Drawn from (seed, photo) and the full family list only, so the same list always gives
    the same assignment. A longer list draws anew; the stage keeps family files that already
    exist as they are and computes only the missing ones (with the new list's draw).
    """
    out: dict[str, list[int]] = {f: [] for f in names}
    order = sorted(names)
    for i in range(n):
        rng = np.random.default_rng([seed, 99, i])
        for j in rng.choice(len(order), size=min(per_photo, len(order)), replace=False):
            out[order[int(j)]].append(i)
    return out


def precompute(
    zoo: dict[str, ZooColorizer],
    train_paths: list[Path],
    val_paths: list[Path],
    zoo_dir: Path,
    spec: ViewSpec,
    max_side: int,
    seed: int,
    per_photo: int = 3,
    all_names: list[str] | None = None,
    processes: int = 2,
    say: Callable[[str], None] = print,
) -> None:
    """Write every missing family file (see the module docstring), `processes` in parallel."""
    names = all_names or sorted(zoo)
    assigned = assign_families(len(train_paths), names, per_photo, seed)
    jobs: list[tuple[str, str, list[tuple[int, str, str]]]] = []
    for split, paths in (("val", val_paths), ("train", train_paths)):
        if not (zoo_dir / split / "real.npz").exists():
            jobs.append((split, "real", [(i, str(p), "real") for i, p in enumerate(paths)]))
    for fam in sorted(zoo):
        if not (zoo_dir / "train" / f"{fam}.npz").exists():
            items = [(i, str(train_paths[i]), fam) for i in assigned[fam]]
            jobs.append(("train", fam, items))
        if not (zoo_dir / "val" / f"{fam}.npz").exists():
            jobs.append(("val", fam, [(i, str(p), fam) for i, p in enumerate(val_paths)]))
    if not jobs:
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(processes, initializer=_init, initargs=(zoo, spec, max_side, seed)) as pool:
        for split, fam, items in jobs:
            t0 = time.time()
            fn = _train_item if split == "train" and fam != "real" else _val_item
            rows = [r for out in pool.imap(fn, items, chunksize=4) for r in out]
            _save(rows, zoo_dir / split / f"{fam}.npz")
            say(f"zoo {split}/{fam}: {len(items)} photos, {time.time() - t0:.0f} s")
