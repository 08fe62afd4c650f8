"""A stored zoo names its feature columns, and loading maps them onto this imgcheck's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgcheck.trainer.forensics import FEATURES
from imgcheck.trainer.zoo_data import load_split


def _write(path: Path, names: list[str] | None, feats: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"names": np.array(names)} if names is not None else {}
    n = len(feats)
    np.savez(
        path, feats=feats, image=np.arange(n, dtype=np.int32), label=np.zeros(n, np.int8), **extra
    )


def test_a_zoo_with_more_features_loads_in_this_versions_order(tmp_path: Path) -> None:
    stored = ["old_feature@1", *reversed(FEATURES), "another"]
    feats = np.arange(3 * len(stored), dtype=np.float32).reshape(3, len(stored))
    _write(tmp_path / "train" / "tint.npz", stored, feats)
    d = load_split(tmp_path, "train", "tint")
    assert d["feats"].shape == (3, len(FEATURES))
    for j, name in enumerate(FEATURES):
        np.testing.assert_array_equal(d["feats"][:, j], feats[:, stored.index(name)])
    assert "names" not in d and d["image"].tolist() == [0, 1, 2]


def test_a_zoo_missing_a_feature_is_an_error_not_misread_columns(tmp_path: Path) -> None:
    stored = [*FEATURES[1:], "old_feature@1"]  # as wide as FEATURES, one column different
    _write(tmp_path / "val" / "real.npz", stored, np.zeros((2, len(stored)), np.float32))
    with pytest.raises(ValueError, match=f"missing {FEATURES[0]}"):
        load_split(tmp_path, "val", "real")
    _write(tmp_path / "val" / "lut.npz", None, np.zeros((2, len(FEATURES) + 4), np.float32))
    with pytest.raises(ValueError, match="recompute the zoo"):
        load_split(tmp_path, "val", "lut")
