"""`trainer.rebuild`: a run folder rebuilt from an exported colorizer resumes at the GAN phase."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (cpu extra)")

from fixtures_trainer import make_photos, tiny_config  # noqa: E402

from imgcheck.export.onnx_export import export_colorizer, save_model  # noqa: E402
from imgcheck.trainer import rebuild as rb  # noqa: E402
from imgcheck.trainer import train as train_mod  # noqa: E402
from imgcheck.trainer.config import TrainConfig, TrainError  # noqa: E402
from imgcheck.trainer.nets import UNetColorizer, generator_config  # noqa: E402

WORK = 32


def _generator(cfg: TrainConfig, gain: float, seed: int = 0) -> UNetColorizer:
    """A generator whose every weight differs from its init, GroupNorm affines included (an
    untouched norm would read back as ones and zeros whatever the reader did)."""
    torch.manual_seed(seed)
    G = UNetColorizer(replace(generator_config(cfg), gain=gain))
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return G.eval()


def _models(root: Path, G: UNetColorizer) -> Path:
    folder = root / "models"
    folder.mkdir(parents=True)
    save_model(export_colorizer(G, WORK), folder / "colorizer.onnx")
    manifest = {"colorizer": {"file": "colorizer.onnx", "work_size": WORK}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _config(root: Path, cfg: TrainConfig) -> Path:
    path = root / "config.json"
    path.write_text(json.dumps({"config": cfg.to_dict()}), encoding="utf-8")
    return path


def _cfg(root: Path, **overrides: object) -> TrainConfig:
    return tiny_config(
        root / "photos", root / "run", g_head="regression", work_size=WORK, **overrides
    )


def test_every_weight_and_the_decode_gain_read_back_exactly(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    G = _generator(cfg, gain=1.25)
    import onnx

    model = onnx.load(str(_models(tmp_path, G) / "colorizer.onnx"))
    state = rb.generator_state(model, UNetColorizer(generator_config(cfg)))
    expected = G.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert rb.decode_gain(model) == pytest.approx(1.25)


def test_a_rebuilt_run_resumes_at_the_gan_phase_with_the_colorizer_as_its_snapshot(
    tmp_path: Path,
) -> None:
    make_photos(tmp_path / "photos", 12, size=96)
    cfg = _cfg(tmp_path)
    G = _generator(cfg, gain=1.5, seed=1)
    models, config = _models(tmp_path, G), _config(tmp_path, cfg)
    lines: list[str] = []
    run = rb.rebuild(models, config, tmp_path / "photos", tmp_path / "run", 0, say=lines.append)
    assert "max |ONNX - torch|" in lines[0]
    last = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert last["position"] == [1, 0, 0]

    torch.set_num_threads(1)
    train_mod.train(replace(cfg, resume=True))
    final = torch.load(run / "checkpoints" / "final.pt", map_location="cpu", weights_only=True)
    G1 = G.state_dict()
    assert all(torch.equal(final["generator_l1"][k], G1[k]) for k in G1)
    phases = {json.loads(row)["phase"] for row in (run / "metrics.jsonl").read_text().splitlines()}
    assert "l1" not in phases and "gan" in phases  # pre-training was not re-run


def test_a_config_of_another_network_or_a_used_folder_is_refused(tmp_path: Path) -> None:
    make_photos(tmp_path / "photos", 6, size=96)
    cfg = _cfg(tmp_path)
    models = _models(tmp_path, _generator(cfg, gain=1.0))
    wider = _config(tmp_path, replace(cfg, g_base=cfg.g_base * 2))
    with pytest.raises(TrainError, match="does not match"):
        rb.rebuild(models, wider, tmp_path / "photos", tmp_path / "run1", 0, say=lambda s: None)
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "keep.txt").write_text("mine")
    with pytest.raises(TrainError, match="not empty"):
        rb.rebuild(models, _config(tmp_path, cfg), tmp_path / "photos", tmp_path / "run2", 0)
    assert (tmp_path / "run2" / "keep.txt").read_text() == "mine"


def test_the_command_reports_a_missing_models_folder_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = rb.main(
        ["--models", str(tmp_path / "nope"), "--config", str(tmp_path / "c.json"),
         "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("imgcheck rebuild: error:") and err.count("\n") == 1
