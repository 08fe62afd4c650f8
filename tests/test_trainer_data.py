"""Trainer data: discovery, skipping, the content-hash split, and per-item determinism."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import colour_photo, make_photos

from imgcheck.trainer.config import TrainConfig
from imgcheck.trainer.data import (
    ColourCrops,
    EpochSampler,
    build_split,
    degrade,
    is_val,
    load_rgb,
)

pytestmark = pytest.mark.torch


def test_bad_and_grey_files_are_skipped_and_counted(tmp_path: Path) -> None:
    make_photos(tmp_path, 6)
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    good = tmp_path / "n02080000-breed_0" / "n0208_00000.jpg"
    (tmp_path / "truncated.jpg").write_bytes(good.read_bytes()[:200])
    Image.new("L", (64, 64), 90).save(tmp_path / "grey_mode.png")
    colour_photo(1).convert("L").convert("RGB").save(tmp_path / "grey_rgb.jpg", quality=90)
    colour_photo(2, size=20).save(tmp_path / "tiny.png")
    shutil.copy(good, tmp_path / "copy_of_first.jpg")

    split = build_split(tmp_path, val_percent=20)

    assert split.counts() == {
        "train": len(split.train),
        "val": len(split.val),
        "unreadable": 3,
        "grayscale": 2,
        "too_small": 1,
        "duplicate": 1,
    }
    assert len(split.train) + len(split.val) == 6
    assert sorted(split.skipped["grayscale"]) == ["grey_mode.png", "grey_rgb.jpg"]


def test_nested_breed_layout_and_stable_split_when_files_are_added(tmp_path: Path) -> None:
    make_photos(tmp_path, 30, size=40)
    before = build_split(tmp_path, val_percent=30)
    assert len(before.train) + len(before.val) == 30
    assert all("/" in p for p in before.train + before.val)  # found inside breed folders
    assert before.val, "30 photos at 30% should give some validation photos"

    make_photos(tmp_path, 10, size=40, start=100)
    after = build_split(tmp_path, val_percent=30)

    assert set(before.train) <= set(after.train)
    assert set(before.val) <= set(after.val)
    assert len(after.train) + len(after.val) == 40
    assert after.data_digest != before.data_digest


def test_split_rule_and_max_images(tmp_path: Path) -> None:
    make_photos(tmp_path, 20, size=40)
    split = build_split(tmp_path, val_percent=50, max_images=8)
    assert len(split.train) + len(split.val) == 8
    assert split == build_split(tmp_path, val_percent=50, max_images=8)
    assert is_val("00000000" + "f" * 56, 1)
    assert not is_val("00000063" + "0" * 56, 99)  # 0x63 = 99: not < 99


def test_large_photos_are_downscaled_to_max_side(tmp_path: Path) -> None:
    path = tmp_path / "wide.jpg"
    colour_photo(3, size=64).resize((1500, 700)).save(path, quality=90)
    image = load_rgb(path, 1024)
    assert max(image.size) == 1024
    assert abs(image.size[1] - round(700 * 1024 / 1500)) <= 1


def test_resumed_sampler_yields_the_rest_of_the_epoch() -> None:
    full = EpochSampler(10, world=1, rank=0, seed=3)
    full.set_epoch(2)
    resumed = EpochSampler(10, world=1, rank=0, seed=3)
    resumed.set_epoch(2, skip=4)
    assert list(resumed) == list(full)[4:]
    assert len(resumed) == 6
    other = EpochSampler(10, world=1, rank=0, seed=3)
    other.set_epoch(3)
    assert list(other) != list(full)


def test_crops_depend_only_on_seed_epoch_and_index(tmp_path: Path) -> None:
    files = make_photos(tmp_path, 2)
    data = ColourCrops(files, crop=32, work_size=64, max_side=64, seed=0, phase=0)
    a = data[(0, 1)]
    assert a.shape == (3, 32, 32) and a.dtype.is_floating_point is False
    assert np.array_equal(a.numpy(), data[(0, 1)].numpy())
    assert not np.array_equal(a.numpy(), data[(1, 1)].numpy())


def test_degrade_draws_once_for_real_and_fake() -> None:
    cfg = TrainConfig(cls_crop=32, jpeg_prob=1.0, blur_prob=1.0)
    real = colour_photo(4, size=64)
    a, b = degrade([real, real.copy()], np.random.default_rng(0), cfg)
    assert a.size == b.size and min(a.size) >= 32
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a.resize(real.size)), np.asarray(real))
