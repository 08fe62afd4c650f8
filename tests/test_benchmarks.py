"""The benchmarks run end to end at a tiny size (fake ONNX models, synthetic images).

These prove that the scripts work; they never assert timings (CI machines are noisy).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fixtures_colorizer import WORK_SIZE, colorizer_model_bytes
from fixtures_onnx import write_model_folder

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
TINY = ["--synthetic", "--min-mp", "0.006", "--max-mp", "0.03"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder with both fake models in one manifest, as `imgcheck export` writes it."""
    import hashlib

    folder = write_model_folder(tmp_path / "model")
    data = colorizer_model_bytes()
    (folder / "colorizer.onnx").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    io = {"name": "image", "dtype": "uint8", "shape": ["N", "H", "W", 3]}
    manifest["colorizer"] = {
        "file": "colorizer.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "inputs": [io],
        "outputs": [{**io, "name": "colorized"}],
        "work_size": WORK_SIZE,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_corpus_is_cached_and_linked(tmp_path: Path) -> None:
    corpus_mod = _load("_corpus")
    first = corpus_mod.make_corpus(tmp_path, 3, min_mp=0.005, max_mp=0.01)
    again = corpus_mod.make_corpus(tmp_path, 3, min_mp=0.005, max_mp=0.01)
    assert first.paths == again.paths and all(p.is_file() for p in first.paths)
    grey = corpus_mod.make_corpus(tmp_path, 2, min_mp=0.005, max_mp=0.01, grey=True)
    assert grey.folder != first.folder
    big = corpus_mod.linked_copies(first, 3, tmp_path)
    assert len([p for p in big.rglob("*.jpg")]) == 9


def test_run_measured_reports_the_childs_own_peak_rss() -> None:
    corpus_mod = _load("_corpus")
    code = "import sys; b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); sys.exit(3)"
    m = corpus_mod.run_measured([sys.executable, "-c", code])
    assert m.returncode == 3
    assert 80 * 2**20 < m.max_rss < 400 * 2**20


def test_bench_scan_tiny(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "scan.json"
    args = ["--n", "3", "--rounds", "2", "--rss-factor", "2", "--help-repeat", "1"]
    args += ["--model", str(model_dir)]
    code = _load("bench_scan").main(
        [*args, *TINY, "--work", str(tmp_path / "work"), "--json", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    for needle in ("(a) decode only", "(b) model only", "(c) imgcheck scan", "(d) naive loop"):
        assert needle in text
    assert "scan / bound" in text and "RSS(2N) / RSS(N)" in text
    report = json.loads(out.read_text())
    assert [r["images"] for r in report["scan_small"]] == [3, 3]
    assert report["scan_large"]["images"] == 6
    assert set(report["ratios"]) == {"scan/bound", "scan/naive", "rss ratio", "help s"}
    assert all(v > 0 for v in report["rates"].values())


def test_bench_scan_ablation(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--n", "2", "--ablate", "1", "--model", str(model_dir), "--work", str(tmp_path)]
    assert _load("bench_scan").main([*args, *TINY]) == 0
    assert "spinning on" in capsys.readouterr().out


def test_bench_colorize_tiny(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "colorize.json"
    args = ["--n", "3", "--model", str(model_dir), "--work", str(tmp_path / "work")]
    assert _load("bench_colorize").main([*args, *TINY, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(c) imgcheck colorize" in text and "colorize / naive" in text
    assert "(c1) colorize --lanes 1" in text and "colorize, lanes / one run" in text
    report = json.loads(out.read_text())
    assert [c["written"] for c in report["cli"] + report["cli_one_run"]] == [3, 3, 3, 3]
    assert all(v > 0 for v in report["rates_mp_s"].values())
    assert not list((tmp_path / "work").glob("colorize-out-*"))  # outputs cleaned up


# -- the performance changes made for the benchmarks keep their behaviour ----------------------


def test_grey_check_matches_the_reference_definition() -> None:
    """decode.is_grey_rgb (plane-wise max - min) == max/min over the channel axis in int16."""
    import numpy as np
    from PIL import Image

    from imgcheck.decode import GREY_TOLERANCE, is_grey_rgb

    def reference(image: Image.Image) -> bool:
        factor = max(1, max(image.size) // 256)
        small = image.reduce(factor) if factor > 1 else image
        arr = np.asarray(small, dtype=np.int16)
        spread = arr.max(axis=2) - arr.min(axis=2)
        return float(np.count_nonzero(spread > GREY_TOLERANCE)) <= 0.001 * spread.size

    rng = np.random.default_rng(0)
    seen = set()
    for i in range(40):
        h, w = (int(v) for v in rng.integers(8, 700, size=2))
        grey = rng.integers(0, 256, size=(h, w), dtype=np.int16)
        spread = int(rng.integers(0, 12))
        arr = np.stack(
            [grey + rng.integers(-spread, spread + 1, size=(h, w)) for _ in range(3)], -1
        )
        if i % 4 == 0:  # a few coloured specks around the 0.1% limit
            arr[rng.integers(0, h, 3), rng.integers(0, w, 3)] = (255, 0, 0)
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        assert is_grey_rgb(image) == reference(image)
        seen.add(reference(image))
    assert seen == {True, False}


def test_sessions_do_not_spin_by_default(model_dir: Path) -> None:
    from imgcheck.session import Device, create_session

    def spinning(session: object) -> str:
        options = session.get_session_options()  # type: ignore[attr-defined]
        return options.get_session_config_entry("session.intra_op.allow_spinning")

    path = model_dir / "detector.onnx"
    assert spinning(create_session(path, Device.CPU)) == "0"
    assert spinning(create_session(path, Device.CPU, spin=True)) == "1"


def test_bench_box_tiny(capsys: pytest.CaptureFixture) -> None:
    """The three window-mean formulations agree (so the timing compares like with like)."""
    pytest.importorskip(
        "torch", reason="bench_box builds its graphs with torch", exc_type=ModuleNotFoundError
    )
    assert _load("bench_box").main(["--batch", "2", "--rounds", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    diffs = [
        float(line.rsplit("max |diff| ", 1)[1]) for line in out.splitlines() if "|diff|" in line
    ]
    assert len(diffs) == 6 and max(diffs) < 1e-5
    assert "ms per tile" in out


def test_bench_powers_tiny(capsys: pytest.CaptureFixture) -> None:
    """Both power formulations give the same features (so the timing compares like with like)."""
    pytest.importorskip(
        "torch", reason="bench_powers builds its graphs with torch", exc_type=ModuleNotFoundError
    )
    assert _load("bench_powers").main(["--batch", "2", "--rounds", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("paired ratio") == 3 and "ms per tile" in out
    change = float(out.rsplit("spread over the tiles ", 1)[1].split()[0])
    assert change < 1e-3


def test_bench_cascade_tiny_with_where(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The shipped models on 20 images cut from 3 fixture photos; --where splits the CPU time."""
    from fixtures_trainer import colour_photo

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        colour_photo(i, 256).save(photos / f"p{i}.jpg", quality=95)
    out = tmp_path / "out.json"
    args = ["--n", "20", "--rounds", "1", "--where", "--photos", str(photos), "--threads", "2"]
    code = _load("bench_cascade").main([*args, "--work", str(tmp_path / "w"), "--json", str(out)])
    assert code == 0
    assert "where the time goes" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["lanes_max_score_diff"] < 1e-5  # lanes vs one 2-thread run: same scores
    where = report["where"]
    assert where["prepare_ms"] > 0 and where["model_ms"] > 0
    assert where["cpu_ms"] >= where["prepare_ms"] + where["model_ms"] - 1e-6


def test_bench_where_tiny(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The shipped models on 8 images cut from 2 fixture photos: every section is printed and
    the content-first order is compared with the scan's own."""
    from fixtures_trainer import colour_photo

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        colour_photo(i, 256).save(photos / f"p{i}.jpg", quality=95)
    args = ["--n", "8", "--tiles", "16", "--rounds", "1", "--photos", str(photos)]
    assert _load("bench_where").main([*args, "--work", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    for size in (1, 2, 4, 8, 16):
        assert f"runs of {size:2d} tiles" in out
    assert "by op type" in out and "AveragePool" in out
    assert "decode side (scanning.prepare" in out
    assert "scan order" in out and "content first" in out
    assert "cascade scoring vs the same" in out


def test_machine_names_the_gpu_when_cuda_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a CUDA provider, the GPU's name comes from nvidia-smi (here a script on PATH that
    answers as the real one does); without one, or when nvidia-smi fails, the line says so."""
    corpus_mod = _load("_corpus")
    assert corpus_mod.gpu_name(["CPUExecutionProvider"]) is None
    tool = tmp_path / "nvidia-smi"
    tool.write_text('#!/bin/sh\n[ "$1" = "--query-gpu=name" ] && echo "NVIDIA H200"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert corpus_mod.gpu_name(["CUDAExecutionProvider", "CPUExecutionProvider"]) == "NVIDIA H200"
    tool.write_text("#!/bin/sh\nexit 9\n")
    assert "did not answer" in corpus_mod.gpu_name(["CUDAExecutionProvider"])


def test_bench_cache_tiny(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The shipped models on 6 images: every mode gives the same rows, warm ones from the cache."""
    from fixtures_trainer import colour_photo

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        colour_photo(i, 256).save(photos / f"p{i}.jpg", quality=95)
    args = ["--n", "6", "--rounds", "1", "--photos", str(photos), "--work", str(tmp_path / "w")]
    assert _load("bench_cache").main(args) == 0
    out = capsys.readouterr().out
    assert "rows identical in every mode: yes" in out
    assert re.search(r"warm .* 6 rows from the cache", out)
    assert re.search(r"checkout .* 6 rows from the cache", out)
    assert re.search(r"cold .* 0 rows from the cache", out)
