"""Model lookup: the shipped models verify, and a wrong --model is a clear ModelError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imgcheck.models import DEFAULT_DIR, MANIFEST, resolve
from imgcheck.session import ModelError

SHIPPED = (DEFAULT_DIR / MANIFEST).is_file()


def test_a_file_that_is_not_onnx_is_refused_by_name(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("hello")
    with pytest.raises(ModelError, match="neither a model folder"):
        resolve("detector", notes)


@pytest.mark.skipif(not SHIPPED, reason="no shipped models")
def test_shipped_models_resolve_with_threshold_view_and_work_size() -> None:
    det, col = resolve("detector"), resolve("colorizer")
    assert det.path.is_file() and col.path.is_file()
    assert det.threshold is not None and 0.0 < det.threshold < 1.0
    assert det.view.get("crop") and col.work_size


@pytest.mark.skipif(not SHIPPED, reason="no shipped models")
def test_a_tampered_shipped_model_fails_its_sha256(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    manifest = json.loads((folder / MANIFEST).read_text())
    target = folder / manifest["detector"]["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        resolve("detector", folder)
    resolve("colorizer", folder)  # untouched files still verify
