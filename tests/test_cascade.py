"""The scan cascade at run time: a few tiles first, all of them only where those are not clearly real.

Real ONNX Runtime sessions on the fake chroma-spread detector of `fixtures_onnx` (its view: four
64-px tiles), with one stage "stop after 1 tile below 0.3": a muted image stops there, a colourful
one is scored on every tile. Half-colourful images make the tile order matter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip(
    "onnx", reason="the fake models are built with onnx.helper", exc_type=ModuleNotFoundError
)

from fixtures_onnx import colourful, muted, write_model_folder

from imgcheck.cascade import tile_order
from imgcheck.manifest import manifest_problems
from imgcheck.results import Stage, Status, Verdict
from imgcheck.scanning import Scanner, scan

STAGES = [(1, 0.3)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cascade") / "m"
    return write_model_folder(folder, threshold=0.5, cascade=STAGES)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(colourful(seed=1)).save(folder / "1_colour.png")
    Image.fromarray(muted(seed=2)).save(folder / "2_muted.png")
    big = np.asarray(Image.fromarray(colourful(seed=4)).resize((900, 700)))
    Image.fromarray(big).save(folder / "3_big.jpg", quality=95)
    Image.fromarray(muted(seed=3)[..., 0], "L").save(folder / "4_grey.png")
    (folder / "5_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    half = muted(seed=5)
    half[:, half.shape[1] // 2 :] = colourful(seed=5)[:, half.shape[1] // 2 :]
    Image.fromarray(half).save(folder / "6_half.png")
    return folder


def rows(photos: Path, models: Path, **kwargs: object) -> dict[str, object]:
    return {Path(r.path).name: r for r in scan(photos, model=models, workers=2, **kwargs)}


def test_tile_order_is_a_spread_permutation() -> None:
    for n in range(1, 40):
        order = tile_order(n)
        assert sorted(order) == list(range(n))
    assert tile_order(16)[:4] == [8, 4, 12, 2]  # the first tiles are not one corner's


def test_clear_real_images_stop_early_and_the_rest_score_exactly_as_without(
    photos: Path, models: Path
) -> None:
    on, off = rows(photos, models), rows(photos, models, cascade=False)
    stopped = on["2_muted.png"]
    assert (stopped.stage, stopped.verdict) == (Stage.SCREEN, Verdict.REAL)
    assert len(stopped.boxes) == 1 and stopped.score < 0.3  # one tile scored, its score
    for name in ("1_colour.png", "3_big.jpg"):
        assert on[name].stage is Stage.DETECTOR and on[name].verdict is Verdict.COLORIZED
        assert on[name].score == pytest.approx(off[name].score, abs=1e-7)
        assert on[name].boxes == off[name].boxes  # every tile, back in view order
    assert {r.stage for r in off.values() if r.status is Status.OK} == {Stage.DETECTOR}
    for name in ("4_grey.png", "5_broken.jpg"):  # rows that are not ok are unchanged
        assert (on[name].status, on[name].stage, on[name].score) == (off[name].status, None, None)
    assert set(on) == set(off)


def test_stage_count_and_batching_do_not_change_rows(photos: Path, tmp_path: Path) -> None:
    """Three stages in batches of 1 or 8: same rows as one stage; passers are exact."""
    many = write_model_folder(tmp_path / "m", threshold=0.5, cascade=[(1, 0.05), (2, 0.2), (3, 0.3)])
    a = {Path(r.path).name: r for r in scan(photos, model=many, batch_size=1, workers=1)}
    b = {Path(r.path).name: r for r in scan(photos, model=many, batch_size=8, workers=2)}
    off = rows(photos, many, cascade=False)
    for name in a:
        assert (a[name].status, a[name].stage, a[name].score) == (
            b[name].status, b[name].stage, b[name].score,
        )  # fmt: skip
        if a[name].stage is Stage.DETECTOR:
            assert a[name].score == pytest.approx(off[name].score, abs=1e-7)


def test_cascade_turns_itself_off_outside_its_calibration(models: Path) -> None:
    assert Scanner(models).cascade is not None
    assert Scanner(models, cascade=False).cascade is None
    low = Scanner(models, threshold=0.2)  # below the threshold the cascade was calibrated for
    assert low.cascade is None and any("cascade off" in w and "0.2" in w for w in low.warnings)
    assert Scanner(models, threshold=0.7).cascade is not None  # stricter: still covered
    other = Scanner(models, view="crop=32")
    assert other.cascade is None and any("--view" in w for w in other.warnings)


def test_a_model_without_a_cascade_scores_every_tile(tmp_path: Path, photos: Path) -> None:
    plain = write_model_folder(tmp_path / "plain", threshold=0.5)
    assert Scanner(plain).cascade is None
    got = rows(photos, plain)
    assert {r.stage for r in got.values() if r.status is Status.OK} == {Stage.DETECTOR}


def test_a_malformed_cascade_is_a_manifest_error(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "m", threshold=0.5, cascade=STAGES)
    data = json.loads((folder / "manifest.json").read_text())
    assert manifest_problems(data) == []
    for bad in ({"stages": []}, {"stages": [{"tiles": 2, "threshold": 1.5}]}, "x"):
        data["detector"]["cascade"] = bad
        assert any("cascade" in p for p in manifest_problems(data))


def test_cli_no_cascade_and_the_stage_column(photos: Path, models: Path) -> None:
    import csv
    import io

    from typer.testing import CliRunner

    from imgcheck.cli import app

    for flags, muted_stage in (([], "screen"), (["--no-cascade"], "detector")):
        result = CliRunner().invoke(
            app, ["scan", str(photos), "--model", str(models), "--report", "csv", *flags]
        )
        assert result.exit_code == 1, result.output
        got = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(result.stdout))}
        assert got["2_muted.png"]["stage"] == muted_stage
        assert got["1_colour.png"]["stage"] == "detector" and got["4_grey.png"]["stage"] == ""


def test_config_file_turns_the_cascade_off(photos: Path, models: Path, tmp_path: Path) -> None:
    import csv
    import io

    from typer.testing import CliRunner

    from imgcheck.cli import app

    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.imgcheck]\ncascade = false\n")
    args = ["scan", str(photos), "--model", str(models), "--report", "csv", "--config", str(config)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    got = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert got["2_muted.png"]["stage"] == "detector"
