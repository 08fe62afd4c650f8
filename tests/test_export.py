"""imgcheck export: ONNX graphs verified against PyTorch, manifest, variants, failure modes.

All nets are tiny random-init ones (tests/fixtures_export.py); one export is shared per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)
onnx = pytest.importorskip(
    "onnx", reason="onnx is not installed (the test extra)", exc_type=ModuleNotFoundError
)
ort = pytest.importorskip(
    "onnxruntime",
    reason="onnxruntime is not installed (the cpu extra)",
    exc_type=ModuleNotFoundError,
)

from fixtures_cli import run_cli  # noqa: E402
from fixtures_export import make_run  # noqa: E402

from imgcheck.export.api import export_run  # noqa: E402
from imgcheck.export.checkpoint import load_run  # noqa: E402
from imgcheck.export.graphs import ColorizerGraph, DetectorGraph  # noqa: E402
from imgcheck.export.samples import natural_images, to_grey  # noqa: E402
from imgcheck.models import resolve, sha256_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("export")
    run = make_run(root / "run", val_images=6)
    out = root / "models"
    manifest = export_run(run, out, calib_count=6, timing_seconds=0.2)
    return run, out, manifest


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# ------------------------------------------------------------------ files, manifest, metadata


def test_files_manifest_and_metadata(exported: tuple[Path, Path, dict]) -> None:
    _, out, manifest = exported
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["imgcheck_manifest"] == 1 and on_disk["opset"] >= 18
    assert on_disk["training_data_digest"] == "0" * 64
    assert on_disk["metrics"] == {"auc": 0.5, "tpr_at_fpr_0.01": 0.0}
    det, col = on_disk["detector"], on_disk["colorizer"]
    assert det["threshold"] == 0.5 and det["view"]["crop"] == 32 and det["min_side"] == 32
    assert col["work_size"] == 32
    assert det["inputs"] == [{"name": "image", "dtype": "uint8", "shape": ["N", "H", "W", 3]}]
    assert [(o["name"], o["dtype"], len(o["shape"])) for o in det["outputs"]] == [
        ("score", "float32", 1),
        ("patch_map", "float32", 3),
    ]
    assert col["outputs"] == [{"name": "colorized", "dtype": "uint8", "shape": ["N", "H", "W", 3]}]
    entries = [det, col, *on_disk["variants"].values()]
    for entry in entries:
        assert sha256_file(out / entry["file"]) == entry["sha256"]
    # Exactly the manifest's files and nothing else (no scratch, no unshipped variant).
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [e["file"] for e in entries] + ["manifest.json"]
    )
    for entry in entries:
        path = out / entry["file"]
        model = onnx.load(str(path))
        onnx.checker.check_model(str(path), full_check=True)
        assert all(i.data_location != onnx.TensorProto.EXTERNAL for i in model.graph.initializer)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
        props = {p.key: p.value for p in model.metadata_props}
        kind = "colorizer" if entry is col else "detector"
        assert props["imgcheck.kind"] == kind
        if kind == "detector":
            assert float(props["imgcheck.threshold"]) == 0.5
            assert json.loads(props["imgcheck.view"]) == det["view"]
        else:
            assert props["imgcheck.work_size"] == "32"
        # No local source paths or stack traces baked into the shipped file.
        assert b"stack_trace" not in path.read_bytes()
    assert manifest == on_disk


def test_reported_parity_within_bounds(exported: tuple[Path, Path, dict]) -> None:
    _, _, manifest = exported
    for kind in ("detector", "colorizer"):
        parity = manifest[kind]["parity"]
        assert parity["cases"] >= 8
        for name, value in parity["max_abs"].items():
            assert value <= parity["bounds"][name], (kind, name, value)
    assert manifest["detector"]["parity"]["bounds"] == {"score": 1e-4, "patch_map": 1e-4}
    assert manifest["colorizer"]["parity"]["bounds"] == {
        "ab": 1e-4,
        "colorized_float": 2e-3,
        "colorized": 1,
    }


# ------------------------------------------------------------------ parity, checked here too


def test_onnx_matches_pytorch(exported: tuple[Path, Path, dict]) -> None:
    """Fresh sizes and batches, not the ones export verified with."""
    from imgcheck.export.verify import ab_tensor, pre_round_tensor, with_outputs

    run_dir, out, _ = exported
    run = load_run(run_dir)
    rng = np.random.default_rng(123)
    det = ort.InferenceSession(str(out / "detector.onnx"), providers=["CPUExecutionProvider"])
    for n, h, w in [(1, 33, 47), (5, 64, 32)]:
        x = natural_images(rng, n, h, w)
        score, patch = det.run(None, {"image": x})
        with torch.no_grad():
            want_s, want_p = (t.numpy() for t in DetectorGraph(run.detector)(torch.from_numpy(x)))
        assert score.shape == (n,) and patch.shape == want_p.shape
        assert np.abs(score - want_s).max() <= 1e-4
        assert np.abs(patch - want_p).max() <= 1e-4

    model = onnx.load(str(out / "colorizer.onnx"))
    pre, ab = pre_round_tensor(model), ab_tensor(model)
    if run.generator.cfg.head == "bins":
        assert ab is None  # no single Tanh: the bins head's decode is a weighted sum
    extra = [pre] if ab is None else [pre, ab]
    col = ort.InferenceSession(with_outputs(model, extra), providers=["CPUExecutionProvider"])
    captured = []
    run.generator.register_forward_hook(lambda m, i, o: captured.append(o.numpy()))
    for n, h, w in [(2, 29, 71), (1, 100, 64), (1, 5, 3)]:
        x = to_grey(natural_images(rng, n, h, w))
        got, got_255, *got_ab = col.run(["colorized", *extra], {"image": x})
        with torch.no_grad():
            want = ColorizerGraph(run.generator, run.work_size)(torch.from_numpy(x)).numpy()
            want_f = ColorizerGraph(run.generator, run.work_size, float_output=True)(
                torch.from_numpy(x)
            ).numpy()
        assert got.shape == x.shape and got.dtype == np.uint8
        if got_ab:
            assert np.abs(got_ab[0] - captured[-1]).max() <= 1e-4  # the network, in [-1, 1]
        assert np.abs(got_255.transpose(0, 2, 3, 1) / 255.0 - want_f).max() <= 2e-3
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
        assert (got == want).mean() > 0.99


# ------------------------------------------------------------------ variants


def test_variants_kept_only_within_auc_bound(exported: tuple[Path, Path, dict]) -> None:
    _, out, manifest = exported
    evaluation = manifest["variant_eval"]
    assert evaluation["real_images"] == 6 and evaluation["fake_images"] == 6
    results, bound = evaluation["results"], evaluation["max_auc_drop"]
    assert bound == 0.005 and {"fp32", "int8", "fp16"} <= set(results)  # both were measured
    for name in ("detector_int8", "detector_fp16"):
        variant = name.split("_")[1]
        drop = -results[variant]["auc_delta"]
        shipped = name in manifest["variants"]
        assert shipped != (name in manifest["variants_skipped"])
        if shipped:  # kept: within the bound, and resolvable by scan --variant
            entry = manifest["variants"][name]
            assert drop <= bound and entry["auc_delta"] == pytest.approx(-drop)
            assert entry["speed_ratio"] > 0 and entry["device"] in ("cpu", "cuda")
            info = resolve("detector", out, variant=variant)
            assert info.path.name == entry["file"] and info.threshold == 0.5
        else:  # left out: for the reason it gives, and its file is not shipped either
            reason = manifest["variants_skipped"][name]
            assert (drop > bound) if reason.startswith("AUC drop") else variant == "fp16"
            assert not (out / f"detector.{variant}.onnx").exists()


def test_fp16_keeps_colour_math_in_float32(exported: tuple[Path, Path, dict]) -> None:
    from imgcheck.export.quantize import network_region, to_fp16

    _, out, _ = exported
    fp32 = onnx.load(str(out / "detector.onnx"))
    fp16 = to_fp16(fp32)
    onnx.checker.check_model(fp16, full_check=True)
    types = {v.name: v.type.tensor_type.elem_type for v in fp16.graph.value_info}
    # sRGB -> Lab is exp/log (`colour._pow`): its powers must not be taken in float16.
    powers = [n for n in fp16.graph.node if n.op_type in ("Exp", "Log")]
    assert powers and all(types[n.input[0]] == onnx.TensorProto.FLOAT for n in powers)
    convs = [n for n in fp16.graph.node if n.op_type == "Conv"]
    assert all(types.get(n.output[0]) == onnx.TensorProto.FLOAT16 for n in convs)
    assert len(network_region(fp32)) > len(convs)
    sess = ort.InferenceSession(fp16.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(out / "detector.onnx"), providers=["CPUExecutionProvider"])
    x = natural_images(np.random.default_rng(1), 2, 40, 40)
    assert np.abs(sess.run(None, {"image": x})[0] - ref.run(None, {"image": x})[0]).max() < 1e-2


# ------------------------------------------------------------------ runtime without torch


def test_models_run_without_torch(exported: tuple[Path, Path, dict]) -> None:
    _, out, manifest = exported
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any torch import now fails
        from pathlib import Path
        import numpy as np
        from imgcheck.models import resolve
        from imgcheck.session import Device, create_session
        folder = Path({str(out)!r})
        x = np.random.default_rng(0).integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
        for variant in [None, *{[k.split("_")[1] for k in manifest["variants"]]!r}]:
            info = resolve("detector", folder, variant=variant)
            score, patch = create_session(info.path, Device.CPU).run(None, {{"image": x}})
            assert score.shape == (3,) and patch.ndim == 3, (score.shape, patch.shape)
            assert ((score >= 0) & (score <= 1)).all() and info.threshold == 0.5
        info = resolve("colorizer", folder)
        (y,) = create_session(info.path, Device.CPU).run(None, {{"image": x[:2]}})
        assert y.shape == (2, 40, 56, 3) and y.dtype == np.uint8 and info.work_size == 32
        assert sys.modules["torch"] is None
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cli_says_how_to_install_torch(tmp_path: Path) -> None:
    code = "import sys; sys.modules['torch'] = None; from imgcheck.cli import main; main()"
    argv = [sys.executable, "-c", code, "export", str(tmp_path), "--out", str(tmp_path / "o")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("imgcheck export: error: needs PyTorch")
    assert "pip install 'imgcheck-colorize[train]'" in proc.stderr


# ------------------------------------------------------------------ CLI and failure modes


def test_cli_export_without_validation_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run")  # split.json with an empty val list
    out = tmp_path / "deep" / "models"
    res = run_cli(["export", run, "--out", out])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["variants"] == {}
    assert "no AUC data" in manifest["variants_skipped"]["detector_int8"]
    assert sorted(p.name for p in out.iterdir()) == [
        "colorizer.onnx",
        "detector.onnx",
        "manifest.json",
    ]
    # OUT exists now: refused without --overwrite, and left as it was.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = run_cli(["export", run, "--out", out, "--no-variants"])
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # --overwrite replaces OUT as a whole (a stub build keeps this test fast) ...
    import imgcheck.export.api as api

    def stub(run, tmp, *args):
        (tmp / "manifest.json").write_text('{"stub": 1}')
        return {"detector": {}, "colorizer": {}, "variants": {}, "variants_skipped": {}}

    monkeypatch.setattr(api, "_build", stub)
    api.export_run(run, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]

    # ... and a build that fails leaves the previous OUT exactly as it was.
    def broken(run, tmp, *args):
        (tmp / "colorizer.onnx").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api, "_build", broken)
    res = run_cli(["export", run, "--out", out, "--overwrite"])
    assert res.exit_code == 2 and "No space left on device" in res.output
    assert (out / "manifest.json").read_text() == '{"stub": 1}'
    assert _leftovers(out.parent) == []


def _truncated(tmp_path: Path) -> Path:
    run = make_run(tmp_path / "trunc")
    final = run / "checkpoints" / "final.pt"
    data = final.read_bytes()
    final.write_bytes(data[: len(data) // 2])
    return run


def _garbage(tmp_path: Path) -> Path:
    run = tmp_path / "garbage"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "final.pt").write_bytes(os.urandom(4096))
    return run


def _no_checkpoint(tmp_path: Path) -> Path:
    run = tmp_path / "empty"
    run.mkdir()
    return run


def _wrong_keys(tmp_path: Path) -> Path:
    run = tmp_path / "wrong"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": 1, "generator": {}}, run / "checkpoints" / "final.pt")
    return run


def _pickled_objects(tmp_path: Path) -> Path:
    run = tmp_path / "objects"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": 1, "threshold": np.float64(0.5)}, run / "checkpoints" / "final.pt")
    return run


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_no_checkpoint, "has no checkpoints/final.pt"),
        (_garbage, "corrupt or truncated"),
        (_truncated, "corrupt or truncated"),
        (_wrong_keys, "missing generator_config"),
        (_pickled_objects, "safe loader refuses"),
        (lambda p: p / "nope", "run folder not found"),
    ],
)
def test_bad_run_folder(tmp_path: Path, make, message: str) -> None:
    run = make(tmp_path)
    out = tmp_path / "out"
    res = run_cli(["export", run, "--out", out])
    assert res.exit_code == 2
    assert message in res.output
    assert res.output.count("error:") == 1 and "Traceback" not in res.output
    assert not out.exists() and _leftovers(tmp_path) == []


def test_unwritable_output(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker / "models", blocker):
        res = run_cli(["export", run, "--out", out, "--no-variants"])
        assert res.exit_code == 2 and res.stderr.startswith("imgcheck export: error:"), res.output
    assert blocker.read_text() == "not a folder" and _leftovers(tmp_path) == []


def _drift(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with one conv weight nudged: what a broken export would look like."""
    weight = next(i for i in model.graph.initializer if len(i.dims) == 4)
    arr = onnx.numpy_helper.to_array(weight) + 0.05
    weight.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), weight.name))
    return model


def test_parity_failure_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A colorizer graph whose weights drifted from the checkpoint must be refused."""
    import imgcheck.export.onnx_export as ox

    real_export = ox.export_colorizer
    monkeypatch.setattr(ox, "export_colorizer", lambda *a, **k: _drift(real_export(*a, **k)))
    run = make_run(tmp_path / "run")
    out = tmp_path / "out"
    res = run_cli(["export", run, "--out", out, "--no-variants"])
    assert res.exit_code == 2
    assert "colorizer: ONNX Runtime does not match PyTorch" in res.output
    assert not out.exists() and _leftovers(tmp_path) == []


def test_detector_parity_check_catches_drift(exported: tuple[Path, Path, dict]) -> None:
    from imgcheck.export.errors import ParityError
    from imgcheck.export.verify import detector_shapes, verify_detector

    run_dir, out, _ = exported
    run = load_run(run_dir)
    model = onnx.load(str(out / "detector.onnx"))
    verify_detector(run.detector, model, detector_shapes(32)[:2])  # the shipped one passes
    with pytest.raises(ParityError, match="detector: ONNX Runtime does not match PyTorch"):
        verify_detector(run.detector, _drift(model), detector_shapes(32)[:2])


def test_bench_variants_runs(exported: tuple[Path, Path, dict], capsys) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_variants", REPO / "benchmarks" / "bench_variants.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run_dir, out, _ = exported
    assert bench.main([str(run_dir), str(out), "--seconds", "0.05", "--batch", "4"]) == 0
    table = capsys.readouterr().out
    assert "split.json val" in table
    for name in ("fp32", "int8", "fp16"):
        assert f"\n{name} " in table


def test_colorizer_with_a_decode_gain_passes_parity_and_applies_the_gain() -> None:
    # The ab parity tensor is the head's Tanh, before the gain: a gain != 1 must not read as
    # drift, and the exported graph must carry the gain (more chroma than at gain 1).
    from imgcheck.export.onnx_export import export_colorizer
    from imgcheck.export.verify import colorizer_shapes, verify_colorizer
    from imgcheck.trainer.nets import ColorizerConfig, UNetColorizer

    torch.manual_seed(0)
    cfg = {"base": 4, "depth": 2, "max_channels": 8, "head": "regression"}
    plain, gained = UNetColorizer(ColorizerConfig(**cfg)), UNetColorizer(
        ColorizerConfig(**cfg, gain=2.0)
    )
    gained.load_state_dict(plain.state_dict())
    chroma = []
    for G in (plain, gained):
        model = export_colorizer(G.eval(), 16)
        verify_colorizer(G, 16, model, colorizer_shapes(16)[:2])
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        grey = np.repeat(np.linspace(20, 230, 24 * 24, dtype=np.uint8).reshape(1, 24, 24, 1), 3, -1)
        out = session.run(None, {"image": grey})[0].astype(np.float32)
        chroma.append(float(np.abs(out - out.mean(-1, keepdims=True)).mean()))
    assert chroma[1] > 1.1 * chroma[0] > 0  # less than 2x: the gamut fit pulls some back


def test_colorizer_card_measures_the_exported_colorizer_and_draws_the_figure(
    exported: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    from PIL import Image

    from imgcheck.trainer import colorizer_card

    run_dir, out, _ = exported
    record = colorizer_card.measure(run_dir, out / "colorizer.onnx", None, tmp_path)
    assert record["photos"] == 6 and record["figure_columns"] == [
        "original", "grayscale", "pre-training (no GAN)", "shipped"
    ]  # fmt: skip
    shipped = record["results"]["shipped"]
    assert shipped["n_images"] == 6 and shipped["colorfulness_real"] > 0
    # The ONNX colorizer is the run's generator: it scores like its PyTorch snapshot.
    assert shipped["psnr"] == pytest.approx(record["results"]["GAN, gain 1"]["psnr"], abs=0.05)
    with Image.open(tmp_path / "comparison.png") as sheet:
        assert sheet.width > 4 * 256 and sheet.height > 8 * 256
    assert json.loads((tmp_path / "colorizer.json").read_text())["photos"] == 6
    assert "| shipped |" in colorizer_card.markdown(record)

    # Without the run folder: the photos found again by content hash, the ONNX row the same.
    alone = colorizer_card.measure_onnx(
        run_dir / "val", out / "colorizer.onnx", None, tmp_path / "alone", val_percent=100
    )
    assert alone["photos"] == 6 and alone["figure_columns"] == ["original", "grayscale", "shipped"]
    assert alone["results"]["shipped"]["psnr"] == pytest.approx(shipped["psnr"])
    assert alone["results"]["shipped"]["chroma_ceiling"] == pytest.approx(shipped["chroma_ceiling"])
    with pytest.raises(colorizer_card.TrainError, match="not an imgcheck colorizer"):
        colorizer_card.measure_onnx(run_dir / "val", out / "detector.onnx", None, tmp_path / "x")
