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
    # Calibrated on the validation photos and every training photo scored out of fold.
    n_train = len(json.loads((run / "split.json").read_text())["train"])
    assert info["calibration_photos"]["training_out_of_fold"] == n_train
    assert info["n_real_calibration"] == n_train + info["calibration_photos"]["validation"]
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


def test_threshold_holds_on_each_variant_not_only_pooled() -> None:
    """Clean photos with a few high scores must not spend the whole pooled 1 % allowance."""
    from imgcheck.metrics import threshold_for_fpr
    from imgcheck.trainer.lofo import calibrate_threshold, held_out_fpr

    rng = np.random.default_rng(3)
    clean = rng.uniform(0.0, 0.5, 200)
    clean[:4] = [0.91, 0.92, 0.93, 0.94]  # 2 % of clean photos score high
    real = {"clean": clean, "420": rng.uniform(0.0, 0.5, 200), "q75": rng.uniform(0, 0.5, 200)}
    pooled = threshold_for_fpr(np.r_[real["clean"], real["420"]], 0.01)
    assert np.mean(real["clean"] >= pooled) > 0.01  # what the pooled rule used to allow
    t = calibrate_threshold(real, 0.01)
    assert np.mean(real["clean"] >= t) <= 0.01 and np.mean(real["420"] >= t) <= 0.01
    held = held_out_fpr(real, 0.01, rounds=20)
    assert set(held) == set(real) and all(0.0 <= r <= 1.0 for r in held.values())
    assert held["clean"] > 0.0  # the halves do not see each other's outliers


def test_cross_fitting_folds_leave_their_photos_out_real_and_fake(run: Path) -> None:
    from imgcheck.trainer.lofo import ZooData, crossfit_real_scores

    data = ZooData.load(run / "zoo")
    assert data.train_real is not None
    (real, _), fakes = data.training_tiles()
    photo = int(data.train_real["photo"][0])
    (real_x, _), fakes_x = data.training_tiles(exclude_photos=np.array([photo]))
    gone = 0
    for d in data.train.values():  # tiles of that photo, real twin and fake, in every family
        gone += int(np.sum(d["photo"][d["image"]] == photo))
    kept = len(real_x) + sum(len(f) for f, _ in fakes_x.values())
    assert gone > 0 and kept == len(real) + sum(len(f) for f, _ in fakes.values()) - gone
    oof = crossfit_real_scores(data, folds=3, steps=20, say=lambda _: None)
    assert oof is not None and set(oof) == {"clean", "q75", "420"}
    n_photos = len(np.unique(data.train_real["photo"]))
    assert all(len(s) == n_photos and np.all(np.isfinite(s)) for s in oof.values())


def test_conformal_threshold_holds_the_rate_on_new_photos() -> None:
    """The rate a threshold flags of photos it was *not* calibrated on: for uniform scores
    that is 1 - t, averaged over many calibration sets of the validation split's size."""
    from imgcheck.metrics import threshold_for_fpr
    from imgcheck.trainer.lofo import conformal_threshold, expected_fpr

    rng = np.random.default_rng(0)
    sets = rng.uniform(size=(4000, 153))
    new_conformal = np.mean([1 - conformal_threshold(s, 0.01) for s in sets])
    new_in_sample = np.mean([1 - threshold_for_fpr(s, 0.01) for s in sets])
    assert new_in_sample > 0.0125  # (k+1)/(n+1) = 2/154: the old rule, 1 % only in-sample
    assert new_conformal <= 0.01 and new_conformal == pytest.approx(expected_fpr(153, 0.01), abs=1e-3)
    big = rng.uniform(size=(2000, 736))
    assert np.mean([1 - conformal_threshold(s, 0.01) for s in big]) <= 0.01
    assert expected_fpr(736, 0.01) == pytest.approx(7 / 737)


def test_recalibrate_keeps_the_head_and_rederives_threshold_and_cascade(
    run: Path, tmp_path: Path
) -> None:
    import shutil

    from imgcheck.trainer import detector_stage

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = torch.load(copy / "checkpoints" / "final.pt", weights_only=True)
    before["threshold"] = 0.5  # as if calibrated by another rule
    torch.save(before, copy / "checkpoints" / "final.pt")
    assert detector_stage.main(["--run", str(copy), "--recalibrate"]) == 0
    after = torch.load(copy / "checkpoints" / "final.pt", weights_only=True)
    for k, v in before["detector"].items():
        assert torch.equal(v, after["detector"][k])
    final = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert after["threshold"] == pytest.approx(final["threshold"], abs=1e-6)
    assert after["cascade"]["detector_threshold"] == after["threshold"]
    info = json.loads((copy / "detector.json").read_text())
    assert info["real_flagged_420"] <= 0.01 + 1e-9
    assert set(info["real_flagged_held_out"]) == {"clean", "420", "q75"}


def test_cascade_calibration_bounds_the_auc_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped images report their partial score; where that would move a family's AUC by more
    than AUC_TOL, the stage threshold comes down until it does not."""
    from imgcheck.trainer import cascade

    rng = np.random.default_rng(0)

    def image(first: float, rest: float) -> np.ndarray:
        return np.r_[np.full(6, first), np.full(6, rest)] + rng.uniform(-0.01, 0.01, 12)

    # Real photos whose first tiles look cleaner than the rest, and a weak family in between.
    real = [image(rng.uniform(0.02, 0.3), rng.uniform(0.3, 0.5)) for _ in range(100)]
    weak = [image(rng.uniform(0.05, 0.25), rng.uniform(0.2, 0.45)) for _ in range(100)]
    strong = [image(0.95, 0.95) for _ in range(20)]
    groups = {
        "real": {"clean": real, "q75": real, "420": real},
        "weak": {"clean": weak, "q75": weak},
        "strong": {"clean": strong, "q75": strong},
    }
    how, threshold = "logit_mean", 0.9
    bounded = cascade.calibrate(groups, threshold, how)
    monkeypatch.setattr(cascade, "AUC_TOL", 1.0)
    loose = cascade.calibrate(groups, threshold, how)
    change = cascade.summary(cascade.measure(groups, loose, threshold, how))["max_auc_change"]
    assert change > 0.004  # the detections-only rule alone would move the weak family's AUC
    assert bounded[0][1] < loose[0][1]
    m = cascade.summary(cascade.measure(groups, bounded, threshold, how))
    assert m["max_auc_change"] <= 0.004 and m["worst_kept"] == 1.0


def test_lofo_spread_is_the_lofo_table_at_each_seed(run: Path) -> None:
    from imgcheck.trainer.detector_head import ForensicConfig
    from imgcheck.trainer.lofo import ZooData, run_lofo
    from imgcheck.trainer.lofo_spread import lofo_spread, spread_markdown

    data = ZooData.load(run / "zoo")
    configs = {"full": ForensicConfig()}
    seeds = (0, 3)
    spread = lofo_spread(data, configs, seeds, steps=20, say=lambda *_: None)
    for i, seed in enumerate(seeds):  # the seed reaches the heads: each column is that table
        table = run_lofo(data, configs, steps=20, say=lambda *_: None, seed=seed)
        for fam in data.families:
            assert spread["full"][fam][i] == table["full"][fam]["auc_clean"]
    md = spread_markdown(spread).splitlines()
    assert len(md) == 2 + len(data.families) + 2 and md[-1].startswith("| **min** |")


def test_lofo_spread_refuses_unknown_features_and_a_run_without_zoo(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imgcheck.trainer.lofo_spread import main

    assert main(["--run", str(run), "--without", "no_such@1"]) == 2
    assert "unknown features ['no_such@1']" in capsys.readouterr().err
    assert main(["--run", str(tmp_path)]) == 2
    assert "zoo not found" in capsys.readouterr().err


def test_recascade_reads_the_head_back_and_rewrites_only_the_cascade(
    run: Path, tmp_path: Path
) -> None:
    """The shipped head read back from its graph calibrates the cascade the stage calibrated;
    other stages change the copy's manifest and nothing else, models and run untouched."""
    pytest.importorskip(
        "onnx", reason="onnx is not installed (the test extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.export.api import export_run
    from imgcheck.export.errors import ExportError
    from imgcheck.trainer.cascade import STAGES
    from imgcheck.trainer.recascade import main, recascade

    models = tmp_path / "models"
    export_run(run, models, variants=False)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    run_tables = (run / "cascade.json").read_bytes()
    shipped = json.loads(before["manifest.json"])["detector"]["cascade"]
    same = recascade(models, run, tmp_path / "same", stages=STAGES, say=lambda _: None)
    for got, want in zip(same["stages"], shipped["stages"], strict=True):
        assert got["tiles"] == want["tiles"]
        assert got["threshold"] == pytest.approx(want["threshold"], abs=1e-5)

    recascade(models, run, tmp_path / "two", stages=(2, 4), say=lambda _: None)
    copy = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert [s["tiles"] for s in copy["detector"]["cascade"]["stages"]] == [2, 4]
    assert copy["recascade"]["stages_before"] == shipped["stages"]
    old = json.loads(before["manifest.json"])
    assert {k: v for k, v in copy["detector"].items() if k != "cascade"} == {
        k: v for k, v in old["detector"].items() if k != "cascade"
    }
    for name, data in before.items():
        assert (models / name).read_bytes() == data
        if name != "manifest.json":
            assert (tmp_path / "two" / name).read_bytes() == data
    assert (run / "cascade.json").read_bytes() == run_tables
    assert (run / "recascade" / "cascade.md").is_file()

    with pytest.raises(ExportError, match="another folder"):
        recascade(models, run, models, say=lambda _: None)
    assert (
        main(["--models", str(models), "--run", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    )
