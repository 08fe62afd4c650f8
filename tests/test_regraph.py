"""`imgcheck export MODELS --regraph`: a detector re-traced from its own graph, calibration kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)
onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (cpu extra)")

from imgcheck.export import regraph  # noqa: E402
from imgcheck.export.errors import ExportError  # noqa: E402
from imgcheck.export.onnx_export import export_detector, save_model  # noqa: E402
from imgcheck.models import sha256_file  # noqa: E402
from imgcheck.trainer.detector_head import ForensicDetector  # noqa: E402
from imgcheck.trainer.forensics import tile_features  # noqa: E402

VIEW = {"mode": "tiles", "max_side": 256, "crop": 128, "grid": 2, "aggregate": "logit_mean"}
CASCADE = {"stages": [{"tiles": 6, "threshold": 0.3}], "calibrated_on": "test"}


def _head(oc_weight: float = 0.3) -> ForensicDetector:
    torch.manual_seed(0)
    det = ForensicDetector()
    tiles = regraph.sample_tiles(64, 128, seed=5)
    with torch.no_grad():
        feats = tile_features(torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0)
        det.fit_statistics(feats.double().numpy())
        for p in det.mlp.parameters():
            p.mul_(0.3)  # scores between 0 and 1, not saturated
        det.oc_weight.fill_(oc_weight)
        det.oc_shift.fill_(0.37)  # not 1.0: the exporter would merge it with every 1.0
    return det.eval()


def _models(root: Path, det: ForensicDetector) -> Path:
    folder = root / "models"
    folder.mkdir(parents=True)
    save_model(export_detector(det, 0.6, VIEW, 128), folder / "detector.onnx")
    (folder / "colorizer.onnx").write_bytes(b"not looked at")
    entry = {
        "file": "detector.onnx",
        "sha256": sha256_file(folder / "detector.onnx"),
        "threshold": 0.6,
        "threshold_rule": "fixed (test)",
        "view": VIEW,
        "cascade": CASCADE,
    }
    colorizer = {"file": "colorizer.onnx", "work_size": 256, "parity": {"max_abs": {"ab": 0.0}}}
    manifest = {"imgcheck_manifest": 1, "detector": entry, "colorizer": colorizer}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _scores(path: Path, tiles: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["score"], {"image": tiles})[0]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[ForensicDetector, Path]:
    """A forensic head exported into a model folder, as a release ships it (one export: slow)."""
    det = _head(oc_weight=-0.4)
    return det, _models(tmp_path_factory.mktemp("regraph"), det)


def test_the_head_is_read_back_with_its_one_class_weight(
    shipped: tuple[ForensicDetector, Path],
) -> None:
    import onnx

    det, models = shipped
    model = onnx.load(str(models / "detector.onnx"))
    back = regraph.head_from_graph(model)
    for name, tensor in det.state_dict().items():
        assert torch.allclose(back.state_dict()[name], tensor, atol=1e-6), name
    # The fallback, for a graph laid out otherwise, reads the same weight from the outputs.
    want = float(torch.nn.functional.softplus(det.oc_weight.detach()))
    assert regraph._fit_one_class_weight(model, back) == pytest.approx(want, rel=2e-2)


def test_a_graph_change_that_moves_scores_is_refused(
    shipped: tuple[ForensicDetector, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imgcheck.trainer.forensics as forensics

    _, models = shipped
    real_log = forensics._log
    monkeypatch.setattr(forensics, "_log", lambda x, eps: real_log(x, eps) + 0.05)
    with pytest.raises(ExportError, match="moves scores"):
        regraph.regraph_models(models, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_regraph_refuses_what_it_cannot_re_trace(tmp_path: Path) -> None:
    from fixtures_export import make_run

    from imgcheck.export.api import export_run

    patchgan = export_run(make_run(tmp_path / "run"), tmp_path / "pg", variants=False)
    assert patchgan["detector"]["file"] == "detector.onnx"
    with pytest.raises(ExportError, match="forensic detector"):
        regraph.regraph_models(tmp_path / "pg", tmp_path / "out")
    with pytest.raises(ExportError, match="not an imgcheck model folder"):
        regraph.regraph_models(tmp_path, tmp_path / "out2")
    with pytest.raises(ExportError, match="another folder"):
        regraph.regraph_models(tmp_path / "pg", tmp_path / "pg")


def test_cli_regraph_keeps_the_head_and_the_calibration(
    shipped: tuple[ForensicDetector, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from imgcheck.cli import app

    _, models = shipped
    out = tmp_path / "out"
    runner = CliRunner()
    ok = runner.invoke(app, ["export", str(models), "--regraph", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "scores move by at most" in ok.output and "manifest.json" in ok.output
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["detector"]
    assert (entry["threshold"], entry["view"], entry["cascade"]) == (0.6, VIEW, CASCADE)
    assert entry["threshold_rule"] == "fixed (test)"
    assert entry["sha256"] == sha256_file(out / "detector.onnx")
    assert manifest["regraph"]["from_sha256"] == sha256_file(models / "detector.onnx")
    assert set(manifest["variants_skipped"]) == {"detector_int8", "detector_fp16"}  # no --calib
    assert (out / "colorizer.onnx").read_bytes() == b"not looked at"  # copied as it is
    tiles = regraph.sample_tiles(16, 128, seed=9)
    before, after = _scores(models / "detector.onnx", tiles), _scores(out / "detector.onnx", tiles)
    assert float(before.min()) > 0.01 and float(before.max()) < 0.99
    assert float(np.abs(before - after).max()) <= 1e-6
    again = runner.invoke(app, ["export", str(models), "--regraph", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_the_export_check_scores_flat_tiles_and_catches_a_lost_eps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exporter's optimiser drops an added constant within 1e-8 of zero; the features
    add such eps only through `_plus_tiny`. Written as a plain `+ eps`, the graph disagrees
    with torch on flat tiles alone, and the verifier's flat case is what sees it."""
    import imgcheck.trainer.forensics as forensics
    from imgcheck.export.errors import ParityError
    from imgcheck.export.verify import detector_shapes, verify_detector

    det = _head()
    bound = ForensicDetector.parity_bound
    shapes = detector_shapes(128, ForensicDetector.min_size)[:2]
    parity = verify_detector(det, export_detector(det, 0.6, VIEW, 128), shapes, bound)
    assert any(c["case"] == "flat" for c in parity.cases)
    monkeypatch.setattr(forensics, "_plus_tiny", lambda x, eps: (x + eps) / eps)
    lost = export_detector(det, 0.6, VIEW, 128)
    with pytest.raises(ParityError, match="flat"):
        verify_detector(det, lost, shapes, bound)
