"""The held-out zoo families (`zoo.unseen`) and the folders `trainer.zoo_fakes` writes for them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from fixtures_trainer import make_photos  # noqa: E402
from fixtures_trainer import photo_tensors as photos  # noqa: E402
from PIL import Image, JpegImagePlugin  # noqa: E402

from imgcheck.trainer.config import TrainConfig  # noqa: E402
from imgcheck.trainer.zoo import HELD_OUT, ZooContext, build_zoo, families  # noqa: E402
from imgcheck.trainer.zoo._protocol import lab_of  # noqa: E402
from imgcheck.trainer.zoo_fakes import main, write_fakes  # noqa: E402

pytestmark = pytest.mark.torch


def test_held_out_families_are_registered_but_never_trained_by_default() -> None:
    default = TrainConfig(data="d", out="o").sources("zoo_families")
    for name in HELD_OUT:
        assert name in families()
        assert name not in default


@pytest.mark.parametrize("name", HELD_OUT)
def test_held_out_family_keeps_luminance_and_invents_chroma(name: str) -> None:
    colorize = build_zoo([name], ZooContext(photos=[]))[name]
    rgb = photos(1, 70)[0][None]
    out = colorize(rgb, np.random.default_rng(0))
    assert out.shape == rgb.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    lab_in, lab_out = lab_of(rgb), lab_of(out)
    # L is the photo's own (up to sRGB clipping of out-of-gamut chroma).
    assert float((lab_out[:, 0] - lab_in[:, 0]).abs().median()) < 1.0
    assert float(lab_out[:, 1:].abs().mean()) > 2.0  # there is colour
    assert float((lab_out[:, 1:] - lab_in[:, 1:]).abs().mean()) > 2.0  # and it is not the truth
    again = colorize(rgb, np.random.default_rng(0))
    assert torch.equal(out, again)  # the draws come from the generator it is given


def test_mirror_moves_the_true_chroma_off_its_luminance() -> None:
    colorize = build_zoo(["mirror"], ZooContext(photos=[]))["mirror"]
    rgb = photos(1, 64)[0][None]
    ab_in = lab_of(rgb)[:, 1:]
    ab_out = lab_of(colorize(rgb, np.random.default_rng(0)))[:, 1:]
    to_flip = min(float((ab_out - f).abs().mean()) for f in (ab_in.flip(-1), ab_in.flip(-2)))
    # The mirrored chroma, up to what the sRGB gamut clips where it lands on other L.
    assert to_flip < 0.25 * float((ab_out - ab_in).abs().mean())


def test_zoo_fakes_writes_a_fake_beside_every_validation_photo(tmp_path) -> None:
    make_photos(tmp_path / "photos", 5, size=80)
    counts = write_fakes(tmp_path / "photos", tmp_path / "out", ["hue_field"], val_percent=100)
    assert counts == {"real": 5, "hue_field": 5}
    real = sorted(p.name for p in (tmp_path / "out" / "real").iterdir())
    assert real == sorted(p.name for p in (tmp_path / "out" / "hue_field").iterdir())
    for folder in ("real", "hue_field"):
        with Image.open(tmp_path / "out" / folder / real[0]) as im:
            assert im.format == "JPEG" and im.size == (80, 80)
            assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0 for both, like a camera's


def test_zoo_fakes_refuses_a_non_empty_folder_and_run_families(tmp_path, capsys) -> None:
    make_photos(tmp_path / "photos", 2, size=80)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert main(["--data", str(tmp_path / "photos"), "--out", str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    args = ["--data", str(tmp_path / "photos"), "--out", str(tmp_path / "new"), "--families", "gan"]
    assert main(args) == 2
    assert "need a training run" in capsys.readouterr().err
