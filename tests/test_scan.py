"""The scan pipeline and `imgcheck.scan()`: rows, order, batching, bounded memory, model errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fixtures_onnx import TEST_VIEW, colourful, muted, write_detector, write_model_folder
from PIL import Image

import imgcheck
from imgcheck import view as view_mod
from imgcheck.inputs import InputItem
from imgcheck.results import ScanResult, Status, Verdict
from imgcheck.scanning import Scanner, parse_view, scan
from imgcheck.session import ModelError
from imgcheck.view import ViewSpec


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m", threshold=0.5)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(colourful(seed=1)).save(folder / "1_colour.png")
    Image.fromarray(muted(seed=2)).save(folder / "2_muted.png")
    Image.fromarray(muted(seed=3)[..., 1], "L").save(folder / "3_grey.png")
    (folder / "4_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return folder


def _run(paths: object, model_dir: Path, **kwargs: object) -> list[ScanResult]:
    return list(scan(paths, model=model_dir, workers=2, **kwargs))  # type: ignore[arg-type]


def test_rows_per_status_in_input_order(photos: Path, model_dir: Path) -> None:
    rows = _run(photos, model_dir)  # a single path, not a list: the folder, not its letters
    assert [Path(r.path).name for r in rows] == [
        "1_colour.png",
        "2_muted.png",
        "3_grey.png",
        "4_broken.jpg",
    ]
    colour, plain, grey, broken = rows
    assert (colour.status, colour.verdict) == (Status.OK, Verdict.COLORIZED) and colour.flagged
    assert colour.score is not None and colour.score > 0.9
    assert (plain.status, plain.verdict) == (Status.OK, Verdict.REAL) and not plain.flagged
    assert (grey.status, grey.verdict, grey.score) == (
        Status.GRAYSCALE,
        Verdict.NOT_APPLICABLE,
        None,
    )
    assert broken.status is Status.ERROR and broken.verdict is Verdict.NOT_APPLICABLE
    assert broken.error and broken.score is None
    assert (colour.width, colour.height, colour.format) == (96, 80, "PNG")


def test_patch_maps_and_boxes_for_heatmaps(photos: Path, model_dir: Path) -> None:
    colour = _run([photos / "1_colour.png"], model_dir)[0]
    spec = ViewSpec.from_dict(TEST_VIEW)
    assert colour.view_size == view_mod.working_size(96, 80, spec)
    assert colour.boxes == view_mod.crop_boxes(96, 80, spec)
    assert len(colour.patch_maps) == spec.count
    assert colour.patch_maps[0].shape == (4, 4)  # 64 px crop, 16 px pooling in the fake model
    assert np.isclose(np.mean([m.mean() for m in colour.patch_maps]), colour.score)


def test_threshold_override_and_public_api(photos: Path, model_dir: Path) -> None:
    rows = list(imgcheck.scan([photos / "2_muted.png"], model=model_dir, threshold=0.01))
    assert rows[0].verdict is Verdict.COLORIZED


def test_batches_give_the_same_scores(tmp_path: Path, model_dir: Path) -> None:
    for i in range(7):
        Image.fromarray(colourful(64 + 9 * i, 70, seed=i) // (i + 1)).save(tmp_path / f"{i}.png")
    one = [r.score for r in _run(tmp_path, model_dir, batch_size=1)]
    three = [r.score for r in _run(tmp_path, model_dir, batch_size=3)]
    assert len(one) == 7 and np.allclose(one, three)


def test_memory_bound_in_flight(tmp_path: Path, model_dir: Path) -> None:
    """The pipeline pulls inputs only as it emits results: never the whole (huge) input."""
    path = tmp_path / "a.png"
    Image.fromarray(colourful(40, 40)).save(path)
    pulled = 0

    def endless() -> Iterator[InputItem]:
        nonlocal pulled
        while True:
            pulled += 1
            yield InputItem(str(path) if pulled % 3 else str(tmp_path / "missing.png"))

    scanner = Scanner(model_dir, batch_size=4, workers=2)
    results = scanner.run(endless())
    for emitted in range(1, 60):
        next(results)
        assert pulled - emitted <= 2 * scanner.window + 1
    results.close()  # stops the workers; an endless input is fine


def test_views_selectable(photos: Path, model_dir: Path) -> None:
    one = _run([photos / "1_colour.png"], model_dir, view="grid=1")[0]
    assert len(one.patch_maps) == 1
    centre = _run([photos / "1_colour.png"], model_dir, view='{"mode": "center", "crop": 32}')
    assert len(centre[0].boxes) == 1 and centre[0].boxes[0][2] - centre[0].boxes[0][0] == 32
    assert parse_view("grid=3,crop=128", ViewSpec()) == ViewSpec(crop=128, grid=3)
    with pytest.raises(ModelError, match="view"):
        Scanner(model_dir, view="colour=blue")
    with pytest.raises(ModelError, match="crop >= 32"):
        Scanner(model_dir, view="crop=8,max_side=64")


def test_big_jpeg_decodes_at_draft_scale_with_full_size_geometry(
    tmp_path: Path, model_dir: Path
) -> None:
    path = tmp_path / "big.jpg"
    blocks = np.kron(colourful(11, 7), np.ones((100, 100, 1), np.uint8))[:603, :1001]
    Image.fromarray(blocks).save(path, quality=90)  # colour that survives the downscale
    row = _run([path], model_dir)[0]
    spec = ViewSpec.from_dict(TEST_VIEW)
    assert (row.width, row.height) == (1001, 603)
    assert row.view_size == view_mod.working_size(1001, 603, spec)
    assert row.verdict is Verdict.COLORIZED


def test_thumbnails_on_request(photos: Path, model_dir: Path) -> None:
    rows = _run([photos / "1_colour.png"], model_dir, thumbnails=True)
    assert rows[0].thumbnail and rows[0].thumbnail.startswith(b"\xff\xd8")
    assert _run([photos / "1_colour.png"], model_dir)[0].thumbnail is None


def test_stdin_paths(photos: Path, model_dir: Path) -> None:
    stdin = io.StringIO(f"{photos / '1_colour.png'}\n{photos / 'nope.png'}\n")
    rows = _run(["-"], model_dir, stdin=stdin)
    assert [r.status for r in rows] == [Status.OK, Status.ERROR]
    assert rows[1].error == "no such file or directory"


def test_bare_onnx_model_uses_its_metadata(tmp_path: Path, photos: Path) -> None:
    model = write_detector(tmp_path / "d.onnx", threshold=0.05)
    scanner = Scanner(model)
    assert scanner.threshold == 0.05 and scanner.spec == ViewSpec.from_dict(TEST_VIEW)
    assert scanner.provider == "cpu" and scanner.model_name.endswith("d.onnx")
    [row] = scanner.run([InputItem(str(photos / "2_muted.png"))])
    assert row.verdict is Verdict.COLORIZED  # muted scores ~0.12, over this model's 0.05


def test_model_without_threshold_warns(tmp_path: Path) -> None:
    scanner = Scanner(write_detector(tmp_path / "d.onnx", threshold=None))
    assert scanner.threshold == 0.5 and "no calibrated threshold" in scanner.warnings[0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_model_folder(p / "m", corrupt_sha=True), "sha256"),
        (lambda p: write_detector(p / "c.onnx", kind="colorizer"), "not an imgcheck detector"),
        (lambda p: write_detector(p / "f.onnx", input_type="float"), "uint8"),
        (lambda p: (p / "junk.onnx").write_bytes(b"not a model") and p / "junk.onnx", "cannot"),
        (lambda p: p / "missing.onnx", "not found"),
        (lambda p: p, "manifest.json"),
    ],
    ids=["bad-sha", "wrong-kind", "wrong-input", "garbage", "missing", "no-manifest"],
)
def test_bad_models_raise_model_error(tmp_path: Path, make: object, message: str) -> None:
    model = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ModelError, match=message):
        scan([tmp_path], model=model)  # raises at the call, before any image


def test_cuda_without_cuda_is_a_model_error(model_dir: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ModelError, match="cuda"):
        Scanner(model_dir, device="cuda")


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_cuda_fallback_warns_on_auto_and_fails_on_cuda(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORT silently runs on CPU when CUDA cannot start: auto warns, an explicit cuda refuses."""
    from imgcheck import session

    monkeypatch.setattr(
        session, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    scanner = Scanner(model_dir, device="auto")
    assert scanner.provider == "cpu"
    assert any("CUDA" in w for w in scanner.warnings)
    with pytest.raises(ModelError, match="fell back to CPU"):
        Scanner(model_dir, device="cuda")


def test_variant_from_manifest_and_missing_variant(tmp_path: Path, photos: Path) -> None:
    folder = write_model_folder(tmp_path / "mv", variants=("int8",))
    base = _run(photos, folder)
    scanner = Scanner(folder, "cpu", workers=2, variant="int8")
    assert scanner.variant == "int8" and scanner.model_name.endswith("detector.int8.onnx")
    assert scanner.threshold == 0.5  # the variant keeps the fp32 calibration
    rows = _run(photos, folder, variant="int8")  # the public API takes it too
    assert [r.score for r in rows] == [r.score for r in base]  # same graph in the fixture
    assert Scanner(folder, "cpu", variant="fp32").variant == "fp32"
    assert Scanner(folder, "cpu", variant=None).model_name.endswith("detector.onnx")
    with pytest.raises(ModelError, match=r"no fp16 detector variant \(available: fp32, int8\)"):
        scan(photos, model=folder, variant="fp16")
    with pytest.raises(ModelError, match=r"available: fp32\)"):
        Scanner(write_model_folder(tmp_path / "plain"), variant="int8")
    with pytest.raises(ModelError, match=r"single \.onnx file"):
        Scanner(write_detector(tmp_path / "d.onnx"), variant="int8")
    assert Scanner(write_detector(tmp_path / "d.onnx"), "cpu", variant="fp32").variant == "fp32"


def test_lanes_split_each_model_call_and_change_no_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On CPU each model call is split over one single-threaded run per core ("lanes"): the
    shipped forensic detector scores every tile on its own, so the split changes no score."""
    from imgcheck import scanning

    for i in range(5):  # photo-sized, so each image has several tiles and the cascade stages
        Image.fromarray(colourful(400 + 40 * i, 300, seed=i)).save(tmp_path / f"c{i}.png")
        Image.fromarray(muted(400, 300 + 20 * i, seed=i)).save(tmp_path / f"m{i}.png")
    monkeypatch.setattr(scanning, "default_lanes", lambda: 3)
    lanes = Scanner(None, "cpu", batch_size=4)
    one = Scanner(None, "cpu", batch_size=4, threads=2)
    assert lanes.lanes == 3 and one.lanes == 1
    items = [InputItem(str(p)) for p in sorted(tmp_path.glob("*.png"))]
    got, ref = list(lanes.run(items)), list(one.run(items))
    assert all(r.status is Status.OK for r in ref) and len(got) == len(ref) == 10
    assert [r.score for r in got] == pytest.approx([r.score for r in ref], abs=1e-6)
    assert [r.stage for r in got] == [r.stage for r in ref]
    runs: list[int] = []
    part = lanes._run_part
    monkeypatch.setattr(lanes, "_run_part", lambda crops: runs.append(len(crops)) or part(crops))
    crops = lanes.prepare(items[0]).crops
    assert crops is not None and len(crops) >= 3
    scores, _ = lanes._run_model(crops)
    n = len(crops)
    assert sorted(runs) == sorted(len(c) for c in np.array_split(np.arange(n), 3))
    assert scores == pytest.approx(one._run_model(crops)[0], abs=1e-6)
    runs.clear()
    lanes._run_model(crops[:1])  # fewer crops than lanes: one run, no empty ones
    assert runs == [1]
    runs.clear()
    many = np.concatenate([crops] * (40 // len(crops) + 1))[:40]
    scores, _ = lanes._run_model(many)  # runs of at most RUN_TILES, in crop order again
    assert sum(runs) == 40 and max(runs) <= scanning.RUN_TILES and len(runs) >= 5
    assert scores == pytest.approx(one._run_model(many)[0], abs=1e-6)
    assert Scanner(None, "cpu", threads=1).lanes == 1  # a Ray actor's one CPU: one run


def test_images_smaller_than_a_tile_are_too_small_not_scored(
    tmp_path: Path, model_dir: Path
) -> None:
    """A thumbnail would be upscaled into a tile, where real photos score high: it gets a
    too_small row (verdict n/a, the reason in `error`) unless the caller lowers min_side."""
    tile = TEST_VIEW["crop"]
    Image.fromarray(colourful(tile - 1, 200)).save(tmp_path / "narrow.png")  # one side short
    Image.fromarray(colourful(tile, tile)).save(tmp_path / "exact.png")
    narrow, exact = sorted(_run(tmp_path, model_dir), key=lambda r: r.path, reverse=True)
    assert (narrow.status, narrow.verdict, narrow.score) == (
        Status.TOO_SMALL,
        Verdict.NOT_APPLICABLE,
        None,
    )
    assert not narrow.flagged and (narrow.width, narrow.height) == (tile - 1, 200)
    assert narrow.error == (
        f"too small to judge: {tile - 1}x200 px, the detector needs {tile} px on each side "
        "(--min-side)"
    )
    assert exact.status is Status.OK and exact.flagged
    scored = {Path(r.path).name: r for r in _run(tmp_path, model_dir, min_side=1)}
    assert scored["narrow.png"].status is Status.OK and scored["narrow.png"].flagged
    stricter = {Path(r.path).name: r for r in _run(tmp_path, model_dir, min_side=tile + 1)}
    assert stricter["exact.png"].status is Status.TOO_SMALL
