"""The forensic detector stage for real on tiny photos: zoo, LOFO table, final.pt, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import make_photos, tiny_config  # noqa: E402

from imgcheck.trainer import train as train_mod  # noqa: E402

pytestmark = pytest.mark.torch

CHEAP = "gan,ours_pre,lut,tint,oracle_lowres,oracle_shift,oracle_tone,propagation"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    make_photos(root / "photos", 16, size=96)
    torch.set_num_threads(1)
    out = root / "run"
    cfg = tiny_config(
        root / "photos", out, detector="forensic", lofo=True, zoo_families=CHEAP,
        zoo_per_photo=3, det_max_side=128, det_tile=64, workers=1, val_percent=40,
    )  # fmt: skip
    train_mod.train(cfg)
    return out


def test_stage_writes_zoo_lofo_and_a_forensic_final(run: Path) -> None:
    families = CHEAP.split(",")
    val = sorted(p.stem for p in (run / "zoo" / "val").glob("*.npz"))
    assert val == sorted([*families, "real"])
    lofo = json.loads((run / "lofo.json").read_text())
    assert set(lofo["table"]) == {"full", "no_forensic", "no_one_class"}
    for name in families:
        m = lofo["table"]["full"][name]
        assert 0.0 <= m["auc_clean"] <= 1.0 and 0.0 <= m["auc_q75"] <= 1.0
    assert "| held-out family |" in (run / "lofo.md").read_text()

    final = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert final["detector_kind"] == "forensic"
    assert final["view"]["mode"] == "tiles" and final["view"]["aggregate"] == "logit_mean"
    assert 0.0 < final["threshold"] <= 1.0
    info = json.loads((run / "detector.json").read_text())
    assert info["real_flagged_clean"] <= 0.01 + 1e-9
    # The scan cascade, calibrated for this detector: stages below its threshold.
    cascade = final["cascade"]
    assert cascade["detector_threshold"] == final["threshold"] and cascade["view"] == final["view"]
    assert all(0.0 < s["threshold"] <= final["threshold"] for s in cascade["stages"])
    measured = json.loads((run / "cascade.json").read_text())
    assert measured["summary"]["worst_kept"] >= 0.995


def test_train_tiles_are_matched_pairs(run: Path) -> None:
    """Every fake in a training family file has its real twin, through the same degradation."""
    from imgcheck.trainer.zoo_data import load_split

    d = load_split(run / "zoo", "train", "tint")
    labels = d["label"]
    assert (labels == 0).sum() == (labels == 1).sum() > 0
    assert np.array_equal(d["photo"][labels == 0], d["photo"][labels == 1])


def test_export_of_the_forensic_detector_matches_torch(run: Path, tmp_path: Path) -> None:
    """ONNX parity is checked by export itself; the scan of a real tile view agrees with torch."""
    pytest.importorskip(
        "onnx", reason="onnx is not installed (the test extra)", exc_type=ModuleNotFoundError
    )
    from PIL import Image

    from imgcheck.export.api import export_run
    from imgcheck.export.checkpoint import load_run
    from imgcheck.trainer.pipeline import detect

    out = tmp_path / "models"
    export_run(run, out, variants=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["detector"]["view"]["mode"] == "tiles"
    assert manifest["detector"]["cascade"]["stages"]  # the scan cascade ships with it

    import imgcheck

    photo = next((run.parent / "photos").rglob("*.png"))
    [row] = list(imgcheck.scan([str(photo)], model=str(out)))
    trained = load_run(run)
    from imgcheck.view import ViewSpec, aggregate, make_views

    spec = ViewSpec.from_dict(manifest["detector"]["view"])
    crops, _ = make_views(Image.open(photo).convert("RGB"), spec)
    with torch.no_grad():
        scores, _ = detect(trained.detector, torch.from_numpy(crops).permute(0, 3, 1, 2) / 255.0)
    assert row.score == pytest.approx(aggregate(scores.numpy(), spec.aggregate), abs=1e-4)


def test_stage_tools_on_a_missing_run_say_so_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imgcheck.trainer import decode, detector_stage

    for main in (detector_stage.main, decode.main):
        assert main(["--run", str(tmp_path / "missing")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("imgcheck train: error:") and "Traceback" not in err
