"""Trainer runs end to end on tiny generated photos: outputs, resume, DDP, command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import make_photos, tiny_config  # noqa: E402

from imgcheck.trainer import train as train_mod  # noqa: E402
from imgcheck.trainer.nets import ColorizerConfig, UNetColorizer  # noqa: E402

pytestmark = pytest.mark.torch

LOSS_KEYS = ("loss_l1", "loss_d", "loss_gan", "loss_chroma", "loss_cls", "acc")


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> list[tuple]:
    """Every logged row without its timings: what must match between two runs."""
    return [(r["phase"], r["epoch"], r["step"], *(r.get(k) for k in LOSS_KEYS)) for r in rows(run)]


@pytest.fixture(autouse=True)
def one_torch_thread() -> object:
    """Tiny nets on a shared 2-core machine: a second OpenMP thread only spins (100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    make_photos(root, 12)
    return root


def test_tiny_run_learns_and_writes_everything(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_mod.train(tiny_config(photos, run, epochs_l1=4))

    epochs = [r for r in rows(run) if r.get("kind") == "epoch"]
    l1 = [r["loss_l1"] for r in epochs if r["phase"] == "l1"]
    assert len(l1) == 4 and l1[-1] < l1[0]
    assert [r["phase"] for r in epochs] == ["l1"] * 4 + ["gan"] * 2 + ["cls"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        f"epoch_{i:03d}.png" for i in range(1, 7)
    ]

    report = json.loads((run / "report.json").read_text())
    assert set(report["detector"]) == {"gan", "l1"}
    for name in ("gan", "l1"):
        assert 0.0 <= report["detector"][name]["auc"] <= 1.0
        assert report["colorizer"][name]["psnr"] > 5
    assert report["threshold"]["real_flagged"] <= 0.01
    assert (run / "report.md").read_text().startswith("# ")

    final = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert final["format"] == 1 and final["version"]
    assert 0.0 <= final["threshold"] <= 1.0 and "validation" in final["threshold_rule"]
    assert final["view"] == {
        "mode": "grid", "max_side": 64, "crop": 32, "grid": 2, "aggregate": "mean"
    }
    assert final["data_digest"] == json.loads((run / "split.json").read_text())["data_digest"]
    assert final["metrics"]["detector"]["gan"]["auc"] == report["detector"]["gan"]["auc"]
    decode = json.loads((run / "decode.json").read_text())
    assert decode["setting"] == "gain" and final["generator_config"]["gain"] == decode["chosen"]
    chosen = {"gan": final["generator_gan"], "pre": final["generator_l1"]}[decode["snapshot"]]
    assert all(torch.equal(final["generator"][k], chosen[k]) for k in chosen)
    n_val = report["threshold"]["n_real"]  # chosen on one half, measured on the other
    assert [h["n_images"] for h in decode["held_out_halves"]] == [n_val // 2, (n_val + 1) // 2]
    G = UNetColorizer(ColorizerConfig(**final["generator_config"]))
    G.load_state_dict(final["generator"])
    G.load_state_dict(final["generator_l1"])
    assert any(
        not torch.equal(final["generator_gan"][k], final["generator_l1"][k])
        for k in final["generator"]
    )
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["epochs_l1"] == 4 and config["versions"]["torch"]


def test_resume_after_a_crash_continues_exactly(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 9 train photos, batch 4: 3 steps per epoch; L1 = steps 1-3, GAN = 4-9, then cls.
    straight = tmp_path / "straight"
    train_mod.train(tiny_config(photos, straight, epochs_l1=1))

    crashed = tmp_path / "crashed"
    calls = 0
    real_gan_step = train_mod.gan_step

    def crash_in_second_gan_epoch(*args: object, **kwargs: object) -> dict:
        nonlocal calls
        calls += 1
        if calls == 6:  # global step 9, mid-epoch; the last checkpoint is step 8
            raise KeyboardInterrupt
        return real_gan_step(*args, **kwargs)

    monkeypatch.setattr(train_mod, "gan_step", crash_in_second_gan_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(tiny_config(photos, crashed, epochs_l1=1))
    assert torch.load(crashed / "checkpoints" / "last.pt", weights_only=True)["step"] == 8
    monkeypatch.setattr(train_mod, "gan_step", real_gan_step)

    with pytest.raises(train_mod.TrainError, match="--resume"):
        train_mod.train(tiny_config(photos, crashed, epochs_l1=1))
    train_mod.train(tiny_config(photos, crashed, epochs_l1=1, resume=True))

    assert losses(crashed) == losses(straight)  # the step after the resume included
    a = torch.load(straight / "checkpoints" / "final.pt", weights_only=True)
    b = torch.load(crashed / "checkpoints" / "final.pt", weights_only=True)
    for key in ("generator", "generator_l1", "detector"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])


def test_ddp_two_gloo_processes_finish_an_epoch(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cfg = tiny_config(photos, run, epochs_l1=1, epochs_gan=1, epochs_cls=1)
    skip = {"data", "out", "device", "resume"}
    def flag(k: str, v: object) -> str:
        name = k.replace("_", "-")
        if isinstance(v, bool):
            return f"--{name}" if v else f"--no-{name}"
        return f"--{name}={v}"

    flags = [flag(k, v) for k, v in asdict(cfg).items() if k not in skip]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "imgcheck.trainer", "--data", str(photos), "--out", str(run), "--device", "cpu",
        *flags,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((run / "report.json").read_text())
    assert report["run"]["world_size"] == 2
    assert (run / "checkpoints" / "final.pt").is_file()
    epochs = [r for r in rows(run) if r.get("kind") == "epoch"]
    assert [r["phase"] for r in epochs] == ["l1", "gan", "cls"]  # rank 0 alone writes
    # 9 training photos over 2 ranks, batch 4: 2 steps per epoch, not 3.
    assert [r["step"] for r in epochs] == [2, 4, 6]


def test_cli_errors_exit_2(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fixtures_cli import run_cli

    result = run_cli(["train", "--data", tmp_path / "missing", "--out", tmp_path / "r"])
    assert result.exit_code == 2 and "not a folder" in result.stderr
    assert result.stderr.startswith("imgcheck train: error: ")

    result = run_cli(["train", "--data", photos, "--out", "x", "--crop", "30"])
    assert result.exit_code == 2 and "multiples of 32" in result.output  # 2 ** --g-depth 5

    result = run_cli(["train", "--data", photos, "--out", tmp_path / "r", "--val-percent", "0"])
    assert result.exit_code == 2 and "validation" in result.output
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()

    result = run_cli(["train", "--data", photos, "--out", tmp_path / "r", "--device", "tpu"])
    assert result.exit_code == 2 and "--device" in result.stderr  # choices, from the field

    monkeypatch.setitem(sys.modules, "torch", None)
    result = run_cli(["train", "--data", photos, "--out", tmp_path / "r"])
    assert result.exit_code == 2 and "pip install 'imgcheck-colorize[train]'" in result.output


def test_every_train_config_field_is_one_option() -> None:
    """The options come from TrainConfig: each field is a flag of the same name, with its
    default, so a new setting needs no second place (and config.json round-trips)."""
    import inspect
    from dataclasses import fields

    from imgcheck.trainer.cli import train_command
    from imgcheck.trainer.config import TrainConfig

    params = inspect.signature(train_command).parameters
    assert list(params) == [f.name for f in fields(TrainConfig)]
    for f in fields(TrainConfig):
        info = params[f.name].default
        assert info.help == f.metadata.get("help", "")
        if not f.metadata.get("required"):
            default = getattr(info.default, "value", info.default)
            assert default == f.default, f.name


def test_cli_module_does_not_import_torch() -> None:
    code = "import sys, imgcheck.trainer.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
