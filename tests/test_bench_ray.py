"""benchmarks/bench_ray.py's in-process measurements run at a tiny size (fake model, no Ray:
test_engine_ray.py runs the engine itself). They never assert timings, only that they measure."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from fixtures_onnx import colourful, muted, write_model_folder
from PIL import Image

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load() -> object:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_ray_under_test", BENCH / "bench_ray.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_serial_work_and_driver_cost(tmp_path: Path) -> None:
    bench = _load()
    model = write_model_folder(tmp_path / "model")
    paths = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray((colourful if i % 2 else muted)(seed=i)).save(path)
        paths.append(path)
    decode, score = bench.serial_work(model, paths, 2)  # type: ignore[attr-defined]
    assert 0 < decode < 5 and 0 < score < 5
    per_row = bench.driver_row_cost(300)  # type: ignore[attr-defined]
    assert 0 < per_row < 0.01 and math.isfinite(per_row)
    assert 50 < bench.listing_bytes(2000) < 5000  # type: ignore[attr-defined]
