"""Training data: any folder of colour photos, a content-hash split, and the two datasets.

- Files are found the way `imgcheck scan` finds them (`detector.inputs.iter_inputs`: recursive,
  hidden names skipped, so the Stanford Dogs layout with one sub-folder per breed just works)
  and decoded by the same `detector.decode.decode` (EXIF orientation, odd modes, and the same
  definition of "grayscale"). Unreadable, grayscale, tiny and duplicate files are skipped and
  counted in split.json, never a crash.
- The train/val split is a function of each file's content hash, so adding or renaming files
  never moves an existing photo between train and val (no leak into the calibration set).
- Randomness of an item depends only on (seed, phase, epoch, index), not on worker processes or
  on how far a run got before an interrupt: a resumed run sees exactly the crops it would have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset, DistributedSampler

from imgcheck.decode import Decoded, decode
from imgcheck.inputs import iter_inputs
from imgcheck.models import sha256_file
from imgcheck.trainer.config import TrainError

MIN_SIDE = 32  # smaller photos are skipped: the discriminator needs 32 px
SKIP_REASONS = ("unreadable", "grayscale", "too_small", "duplicate")
Colorizer = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [0, 1] -> same


class DataError(TrainError):
    """A problem with the training data, reported to the user as one line (exit code 2)."""


# --------------------------------------------------------------------------- loading


def load_rgb(path: str | Path, max_side: int) -> Image.Image:
    """Decode an RGB photo, downscaled so its long side is at most `max_side` (the view's scale).

    JPEGs are reduced in the DCT first (draft), then box-filtered like the detector view does.
    """
    result = decode(path, draft_scale=lambda w, h: min(1.0, max_side / max(w, h)))
    if not isinstance(result, Decoded):
        raise DataError(f"{path}: {result.error} (the file changed after the split was made?)")
    image = result.image
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    return image


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 (3, H, W); floats are made on the device, where it is cheaper."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def to_image(rgb: torch.Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] -> PIL RGB, rounded like a saved 8-bit file."""
    arr = (rgb.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), "RGB")


# --------------------------------------------------------------------------- split


@dataclass
class Split:
    """Which photos train and which validate; paths are relative to `root` (posix)."""

    root: str
    train: list[str]
    val: list[str]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    data_digest: str = ""

    def paths(self, which: str) -> list[Path]:
        return [Path(self.root) / p for p in getattr(self, which)]

    def counts(self) -> dict[str, int]:
        out = {"train": len(self.train), "val": len(self.val)}
        out.update({k: len(v) for k, v in self.skipped.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        return cls(data["root"], data["train"], data["val"], data["skipped"], data["data_digest"])


def is_val(sha256: str, val_percent: int) -> bool:
    """Stable assignment: a photo's split depends on its bytes alone."""
    return int(sha256[:8], 16) % 100 < val_percent


def _sha256(path: str) -> str | None:
    try:
        return sha256_file(Path(path))
    except OSError:
        return None


def _inspect(path: str, max_side: int) -> str:
    """'ok' or the skip reason; decodes at training scale, as the loader will."""
    result = decode(path, draft_scale=lambda w, h: min(1.0, max_side / max(w, h)))
    if not isinstance(result, Decoded):
        return "unreadable"
    if result.grayscale:
        return "grayscale"
    if min(result.width, result.height) < MIN_SIDE:
        return "too_small"
    return "ok"


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def build_split(
    root: str | Path,
    val_percent: int,
    max_images: int = 0,
    max_side: int = 1024,
    workers: int = 4,
) -> Split:
    """Scan `root` recursively and split its usable colour photos by content hash.

    With `max_images`, the photos with the smallest hashes are kept: a fixed pseudo-random
    sample (not the first breeds in alphabetical order), stable as files are added.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder")
    skipped: dict[str, list[str]] = {reason: [] for reason in SKIP_REASONS}

    def rel(path: str) -> str:
        return Path(path).relative_to(root).as_posix()

    paths = []
    for item in iter_inputs([str(root)]):
        (skipped["unreadable"] if item.error else paths).append(rel(item.path))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        hashes = list(pool.map(_sha256, [str(root / p) for p in paths]))
        by_hash: dict[str, str] = {}
        for p, h in zip(paths, hashes, strict=True):
            if h is None:
                skipped["unreadable"].append(p)
            elif h in by_hash:
                skipped["duplicate"].append(p)
            else:
                by_hash[h] = p
        order = sorted(by_hash) if max_images else sorted(by_hash, key=by_hash.__getitem__)
        usable: list[str] = []  # hashes
        limit = max_images or len(order)
        for chunk in _chunks(order, 64):
            statuses = pool.map(lambda h: _inspect(str(root / by_hash[h]), max_side), chunk)
            for h, status in zip(chunk, statuses, strict=True):
                if status != "ok":
                    skipped[status].append(by_hash[h])
                elif len(usable) < limit:
                    usable.append(h)
            if len(usable) >= limit:
                break
    if not usable:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in skipped.items() if v) or "no image files"
        raise DataError(f"--data {root}: no usable colour photos ({counts})")
    usable.sort(key=by_hash.__getitem__)
    digest = hashlib.sha256("\n".join(sorted(usable)).encode()).hexdigest()
    return Split(
        root=str(root.resolve()),
        train=[by_hash[h] for h in usable if not is_val(h, val_percent)],
        val=[by_hash[h] for h in usable if is_val(h, val_percent)],
        skipped={k: sorted(v) for k, v in skipped.items()},
        data_digest=digest,
    )


# --------------------------------------------------------------------------- sampling


class EpochSampler(DistributedSampler):
    """DistributedSampler that yields (epoch, index) and can skip what a resumed run already did.

    Handing the epoch to the dataset with every index keeps the dataset stateless, so worker
    processes need no `set_epoch` of their own. One rank, world size 1, without DDP.
    """

    def __init__(self, n: int, world: int, rank: int, seed: int) -> None:
        super().__init__(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.skip :]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return super().__len__() - self.skip


def item_rng(seed: int, phase: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, phase, epoch, index])


# --------------------------------------------------------------------------- generator data


class ColourCrops(Dataset):
    """Random crops for the generator, at the scale the deployed colorizer works at.

    `colorize_full` squashes the whole photo to `work_size` x `work_size`, so a `crop`-pixel
    crop covering `crop / work_size` of each side, resized to `crop`, shows the network objects
    at exactly the size it meets them in deployment (jittered by +-25%). Plus horizontal flips.
    """

    def __init__(
        self, files: list[Path], crop: int, work_size: int, max_side: int, seed: int, phase: int
    ) -> None:
        self.files, self.crop, self.work_size, self.max_side = files, crop, work_size, max_side
        self.seed, self.phase = seed, phase

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, index = key
        rng = item_rng(self.seed, self.phase, epoch, index)
        # Decoded at twice the work size, not `max_side`: a crop shows at most ~0.6 of a side
        # at `crop` pixels, so more pixels are only decoded to be thrown away (a 2-4x cheaper
        # JPEG draft decode, which was most of a pre-training step on CPU).
        image = load_rgb(self.files[index], min(self.max_side, 2 * self.work_size))
        w, h = image.size
        frac = self.crop / self.work_size
        cw = min(w, max(1, round(w * frac * rng.uniform(0.8, 1.25))))
        ch = min(h, max(1, round(h * frac * rng.uniform(0.8, 1.25))))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out = image.resize(
            (self.crop, self.crop), Image.Resampling.BILINEAR, (x, y, x + cw, y + ch)
        )
        if rng.random() < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(out)


# --------------------------------------------------------------------------- classifier data

_RESAMPLERS = (
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
)


def colorize_image(
    colorizer: Colorizer, image: Image.Image, device: torch.device | str = "cpu"
) -> Image.Image:
    """Run a colorizer on one PIL photo and round to 8 bits, as a saved colorized file is."""
    with torch.no_grad():
        rgb = to_tensor(image).to(device).float().div(255).unsqueeze(0)
        return to_image(colorizer(rgb)[0])


def degrade(images: Iterable[Image.Image], rng: np.random.Generator, cfg: Any) -> list[Image.Image]:
    """What scan meets in the wild, drawn once and applied identically to every image given.

    Random resize (0.5-1.0, random filter; each side kept >= the crop, as the view does),
    optional Gaussian blur, optional JPEG re-encode at quality 30-100. Real photos and their
    colorized twins go through the same draw, so neither file format, compression history nor
    scale can tell the classes apart: only the colours can.
    """
    scale = rng.uniform(0.5, 1.0)
    resample = _RESAMPLERS[int(rng.integers(len(_RESAMPLERS)))]
    blur = rng.uniform(0.3, 1.2) if rng.random() < cfg.blur_prob else 0.0
    quality = int(rng.integers(30, 101)) if rng.random() < cfg.jpeg_prob else 0
    out = []
    for image in images:
        w, h = image.size
        size = (max(cfg.cls_crop, round(w * scale)), max(cfg.cls_crop, round(h * scale)))
        image = image.resize(size, resample)
        if blur:
            image = image.filter(ImageFilter.GaussianBlur(blur))
        if quality:
            buf = BytesIO()
            image.save(buf, "JPEG", quality=quality)
            image = Image.open(BytesIO(buf.getvalue())).convert("RGB")
        out.append(image)
    return out


class ClassifierPairs(Dataset):
    """(real, colorized) crop pairs of the same training photo for the classifier phase.

    The fake is made on the fly from the whole (<= max_side) photo by one of `colorizers`,
    picked at random per item: frozen generator snapshots run through `pipeline.colorize_full`
    (the deployed path) and non-GAN baselines. Both images then get the same `degrade` draw and
    the same `cls_crops` random crop windows. Item: uint8 (cls_crops, 2, 3, crop, crop), index
    0 real, 1 colorized. Colorizing runs in the DataLoader workers, so it overlaps training.
    """

    def __init__(
        self, files: list[Path], colorizers: dict[str, Colorizer], cfg: Any, phase: int
    ) -> None:
        self.files, self.colorizers, self.cfg, self.phase = files, colorizers, cfg, phase
        self.names = sorted(colorizers)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, index = key
        rng = item_rng(self.cfg.seed, self.phase, epoch, index)
        real = load_rgb(self.files[index], self.cfg.max_side)
        name = self.names[int(rng.integers(len(self.names)))]
        fake = colorize_image(self.colorizers[name], real)
        real, fake = degrade([real, fake], rng, self.cfg)
        c = self.cfg.cls_crop
        w, h = real.size
        crops = []
        for _ in range(self.cfg.cls_crops):
            x, y = int(rng.integers(0, w - c + 1)), int(rng.integers(0, h - c + 1))
            box = (x, y, x + c, y + c)
            crops.append(torch.stack([to_tensor(real.crop(box)), to_tensor(fake.crop(box))]))
        return torch.stack(crops)


def worker_init(_: int) -> None:
    """One torch thread per DataLoader worker: the workers are the parallelism."""
    torch.set_num_threads(1)
