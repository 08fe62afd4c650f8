"""colorize(): the Python API, the batch runner, and the output-safety rules (no CLI here)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_colorizer import (
    TINT,
    expected_colorized,
    write_colorizer_file,
    write_colorizer_folder,
)
from PIL import Image, ImageCms

from imgcheck import colorizing as cz
from imgcheck.outputs import (
    TEMP_SUFFIX,
    Format,
    InputCollision,
    OutputError,
    OutputPlanner,
    atomic_write,
    output_format,
    remove_stale_temps,
    safe_join,
)
from imgcheck.session import ModelError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colorizer_file(tmp_path_factory.mktemp("model") / "colorizer.onnx")


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _tinted(out: np.ndarray) -> bool:
    """The fake model's signature: R - B == 2 * tint wherever nothing clipped."""
    r, b = out[..., 0].astype(int), out[..., 2].astype(int)
    ok = (out[..., 0] < 255) & (out[..., 2] > 0)
    return bool(ok.any()) and bool(np.all((r - b)[ok] == int(TINT[0] - TINT[2])))


# --- Python API ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_pil_any_mode_gives_rgb_of_same_size(model: Path, mode: str) -> None:
    grey = Image.fromarray(np.tile(np.arange(0, 200, 2, dtype=np.uint8), (30, 1)), "L")
    image = (
        grey.convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    )
    out = cz.colorize(image, model=model)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (100, 30)
    expected = expected_colorized(np.repeat(np.asarray(grey)[..., None], 3, -1))
    assert np.abs(np.asarray(out).astype(int) - expected).max() <= 1  # 16-bit scaled, not clipped


def test_numpy_shapes(model: Path) -> None:
    rgb = _noise(24, 40)
    out = cz.colorize(rgb, model=model)
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8
    assert np.array_equal(out, expected_colorized(rgb))
    grey = rgb[..., 0]
    assert np.array_equal(cz.colorize(grey, model=model), expected_colorized(np.dstack([grey] * 3)))
    assert np.array_equal(cz.colorize(grey[..., None], model=model), cz.colorize(grey, model=model))
    rgba = np.dstack([rgb, np.zeros((24, 40), np.uint8)])
    assert np.array_equal(cz.colorize(rgba, model=model), out)  # alpha ignored


def test_colour_input_is_greyed_by_the_model(model: Path) -> None:
    """Chroma of the output is the model's, never the input's: a pure red photo comes out tinted."""
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    out = cz.colorize(red, model=model)
    assert _tinted(out) and np.ptp(out[..., 1]) == 0


def test_bad_arguments_are_clear(model: Path) -> None:
    with pytest.raises(TypeError, match="uint8"):
        cz.colorize(np.zeros((4, 4), np.float32), model=model)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        cz.colorize(np.zeros((4, 4, 2), np.uint8), model=model)
    with pytest.raises(TypeError, match="PIL image or a numpy array"):
        cz.colorize("photo.jpg", model=model)  # type: ignore[call-overload]


def test_session_is_cached(model: Path) -> None:
    assert cz.get_colorizer(model, "cpu") is cz.get_colorizer(str(model), "cpu")


def test_model_errors(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        cz.Colorizer(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="not an imgcheck colorizer"):
        cz.Colorizer(write_colorizer_file(tmp_path / "det.onnx", kind="detector"))
    with pytest.raises(ModelError, match="sha256"):
        cz.Colorizer(write_colorizer_folder(tmp_path / "bad", corrupt=True))
    good = cz.Colorizer(write_colorizer_folder(tmp_path / "good"), "cpu")
    assert good.info.work_size == 16 and good.provider == "cpu"


def test_icc_profile_converted_or_passed_through(model: Path) -> None:
    rgb = _noise(8, 8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = Image.fromarray(rgb)
    tagged.info["icc_profile"] = srgb
    converted = np.asarray(cz._srgb(tagged)).astype(int)
    assert np.abs(converted - rgb).max() <= 2  # sRGB -> sRGB: (almost) the same pixels
    broken = Image.fromarray(rgb)
    broken.info["icc_profile"] = b"not a profile"
    assert cz._srgb(broken) is broken
    assert np.array_equal(np.asarray(cz.colorize(broken, model=model)), expected_colorized(rgb))


def test_api_and_cli_module_stay_light(model: Path) -> None:
    """--help must not pay for onnxruntime/numpy/PIL; colorize never imports torch."""
    code = (
        "import sys; from imgcheck import cli_colorize; "
        "heavy = [m for m in ('onnxruntime', 'numpy', 'PIL', 'torch') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "import numpy as np, imgcheck; "
        "imgcheck.colorize(np.zeros((8, 8), np.uint8), model=sys.argv[1]); "
        "assert 'torch' not in sys.modules and 'imgcheck.trainer' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code, str(model)], check=True, cwd=ROOT, timeout=60)


# --- batching -------------------------------------------------------------------------------


def test_batcher_groups_same_sizes_and_sends_big_images_alone() -> None:
    b = cz.Batcher(batch_size=3, max_pixels=10_000)
    assert b.add("a", (10, 10)) == [] and b.add("x", (20, 10)) == []
    assert b.add("b", (10, 10)) == []
    assert b.add("c", (10, 10)) == [["a", "b", "c"]]
    assert b.add("huge", (100, 60)) == [["huge"]]  # over half the budget: alone
    assert b.flush() == [["x"]] and b.pending == 0


def test_batcher_bounds_waiting_pixels() -> None:
    b = cz.Batcher(batch_size=100, max_pixels=1000)
    released = [batch for i in range(30) for batch in b.add(i, (10 + i, 3))]
    assert released and b.pending <= 1000
    assert sorted(x for batch in released + b.flush() for x in batch) == list(range(30))


class _FlakyColorizer:
    """Fails any batch holding the poisoned image: the runner must retry the others alone."""

    provider = "cpu"

    def run(self, batch: np.ndarray) -> np.ndarray:
        if (batch == 13).all(axis=(1, 2, 3)).any():
            raise RuntimeError("boom\nsecond line")
        return batch[..., ::-1].copy()


def test_one_failing_image_does_not_sink_its_batch(tmp_path: Path) -> None:
    planner = OutputPlanner(tmp_path / "out", [], Format.PNG)
    jobs = []
    for i, value in enumerate([10, 13, 20, 30]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (value,) * 3).save(path)
        jobs.append(cz.Job(str(path), path.name, planner.plan(path.name, path)))
    results = {r.path: r for r in cz.run_jobs(jobs, _FlakyColorizer(), workers=2, batch_size=4)}  # type: ignore[arg-type]
    assert results["1.png"].outcome is cz.Outcome.ERROR
    assert results["1.png"].error == "colorizer failed: boom"
    assert {p for p, r in results.items() if r.outcome is cz.Outcome.WRITTEN} == {
        "0.png",
        "2.png",
        "3.png",
    }


def test_split_batch_keeps_every_lane_busy() -> None:
    assert cz.split_batch(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert cz.split_batch([1], 4) == [[1]]  # never an empty run
    assert cz.split_batch(list(range(8)), 3) == [[0, 1, 2], [3, 4, 5], [6, 7]]


class _PairedColorizer:
    """Each run waits until another run has started: only side-by-side lanes get through."""

    provider = "cpu"
    lanes = 2

    def __init__(self) -> None:
        import threading

        self.barrier = threading.Barrier(2, timeout=10)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.barrier.wait()
        return batch[..., ::-1].copy()


def test_lanes_run_model_calls_side_by_side(tmp_path: Path) -> None:
    """With two lanes, two model runs are in flight at once: a batch of same-size images is
    split over the lanes, and lone images of different sizes run two at a time."""
    planner = OutputPlanner(tmp_path / "out", [], Format.PNG)
    jobs = []
    for i, size in enumerate([(8, 8), (8, 8), (9, 7), (7, 9), (8, 8), (8, 8)]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(_noise(size[1], size[0], i)).save(path)
        jobs.append(cz.Job(str(path), path.name, planner.plan(path.name, path)))
    colorizer = _PairedColorizer()
    results = list(cz.run_jobs(jobs, colorizer, workers=2, batch_size=2))  # type: ignore[arg-type]
    assert [r.error for r in results] == [None] * 6  # no run waited alone for its partner
    assert all(r.outcome is cz.Outcome.WRITTEN for r in results)


def test_lanes_change_no_pixel_of_the_shipped_colorizer(tmp_path: Path) -> None:
    """Lanes only decide which images run side by side: each image is colorized on its own,
    so the shipped model writes the same bytes with two lanes as with one run at a time."""
    sizes = [(64, 48), (64, 48), (64, 48), (40, 72), (96, 64)]
    paths = []
    for i, (w, h) in enumerate(sizes):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(_noise(h, w, i)).convert("L").save(paths[-1])
    written = {}
    for lanes in (1, 2):
        out = tmp_path / f"out{lanes}"
        planner = OutputPlanner(out, [], Format.PNG)
        jobs = [cz.Job(str(p), p.name, planner.plan(p.name, p)) for p in paths]
        colorizer = cz.Colorizer(None, "cpu", lanes=lanes)
        assert colorizer.lanes == lanes
        results = list(cz.run_jobs(jobs, colorizer, workers=2, batch_size=3))
        assert all(r.outcome is cz.Outcome.WRITTEN for r in results)
        written[lanes] = {p.name: (out / p.name).read_bytes() for p in paths}
    assert written[1] == written[2]


def test_default_lanes_follow_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """lanes=0: one lane per core up to MAX_LANES, each on its share of the cores; CUDA and
    lanes=1 run one call at a time."""
    for cores, lanes, threads in ((1, 1, None), (3, 3, 1), (16, cz.MAX_LANES, 4)):
        monkeypatch.setattr(cz, "usable_cores", lambda cores=cores: cores)
        colorizer = cz.Colorizer(None, "cpu", lanes=0)
        assert colorizer.lanes == lanes
        intra = colorizer.session.get_session_options().intra_op_num_threads
        assert intra == (threads or os.cpu_count())
    assert cz.Colorizer(None, "cpu").lanes == 1
    with pytest.raises(ValueError, match="lanes"):
        cz.Colorizer(None, "cpu", lanes=-1)


def test_broken_model_output_is_a_model_error(tmp_path: Path) -> None:
    class Wrong(cz.Colorizer):
        def __init__(self) -> None:  # no model file needed
            self.info = type("I", (), {"path": Path("x.onnx")})()  # type: ignore[assignment]

            class S:
                def run(self, names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
                    return [feeds["image"][:, :4]]

            self.session = S()

    with pytest.raises(ModelError, match="expected uint8"):
        Wrong().run(np.zeros((1, 8, 8, 3), np.uint8))


def test_compare_view_layout() -> None:
    rgb = _noise(30, 50)
    view = np.asarray(cz.compare_view(rgb, expected_colorized(rgb), gap=4))
    top = cz.label_height(30)
    assert view.shape == (top + 30, 3 * 50 + 2 * 4, 3)
    assert np.array_equal(view[top:, :50], rgb)
    grey = view[top:, 54:104]
    assert np.array_equal(grey[..., 0], grey[..., 2])
    # Each column is named in the strip above it: dark text on white, in all three columns.
    for left in (0, 54, 108):
        strip = view[:top, left : left + 50]
        assert (strip < 100).any() and (strip == 255).any()
    big = np.asarray(cz.compare_view(_noise(2000, 500), _noise(2000, 500)))
    assert big.shape[0] == cz.label_height(cz.COMPARE_MAX_SIDE) + cz.COMPARE_MAX_SIDE


# --- output paths and atomic writes ----------------------------------------------------------


def test_output_format_mapping() -> None:
    assert output_format(Format.SAME, ".JPEG") == ("JPEG", ".JPEG")
    assert output_format(Format.SAME, ".tif") == ("TIFF", ".tif")
    assert output_format(Format.SAME, ".gif") == ("PNG", ".png")
    assert output_format(Format.SAME, "") == ("PNG", ".png")
    assert output_format(Format.WEBP, ".png") == ("WEBP", ".webp")
    assert output_format(Format.JPG, ".png") == ("JPEG", ".jpg")


@pytest.mark.parametrize("rel", ["../x.png", "a/../../x.png", "/etc/x.png", "", "a/.."])
def test_safe_join_refuses_escapes(tmp_path: Path, rel: str) -> None:
    with pytest.raises(OutputError):
        safe_join(tmp_path.resolve(), rel)


def test_safe_join_refuses_symlinks_out(tmp_path: Path) -> None:
    root = (tmp_path / "out").resolve()
    (tmp_path / "elsewhere").mkdir()
    root.mkdir()
    (root / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match="escape"):
        safe_join(root, "sub/a.png")
    (root / "link.png").symlink_to(tmp_path / "elsewhere" / "t.png")
    with pytest.raises(OutputError, match="symlink"):
        safe_join(root, "link.png")
    assert safe_join(root, "deep/er/a.png") == root / "deep" / "er" / "a.png"
    assert safe_join(root, "..x/a..png") == root / "..x" / "a..png"  # dots in names are fine


def test_planner_refuses_inputs_and_double_claims(tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    os.link(src, out / "hard.jpg")  # another name for the same input file
    planner = OutputPlanner(out, [src], Format.SAME, compare=True)
    with pytest.raises(InputCollision):
        planner.plan("hard.jpg", "hard.jpg")
    with pytest.raises(InputCollision):
        OutputPlanner(tmp_path, [src]).plan("in.jpg", src)
    first = planner.plan("a.jpg", "a.jpg")
    assert first.compare == out.resolve() / "a.compare.jpg" and first.write_output
    with pytest.raises(OutputError, match="already written"):
        planner.plan("a.jpg", "b")
    png = OutputPlanner(out, [], Format.PNG)
    png.plan("c.jpg", "c.jpg")
    with pytest.raises(OutputError, match=r"already written for c\.jpg"):
        png.plan("c.webp", "c.webp")  # both would become c.png


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"done")
    assert OutputPlanner(tmp_path, [], Format.PNG).plan("a.jpg", "a.jpg").done
    target = OutputPlanner(tmp_path, [], Format.PNG, compare=True).plan("a.jpg", "a.jpg")
    assert not target.write_output and target.write_compare  # only the missing file is made
    assert not OutputPlanner(tmp_path, [], Format.PNG, overwrite=True).plan("a.jpg", "a").done


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    target.write_bytes(b"old")

    def half(stream: io.BufferedWriter) -> None:
        stream.write(b"new but incomplete")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.png"]
    atomic_write(target, lambda s: s.write(b"new"))
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["a.png"]


def test_stale_temps_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".a.png.{int(dead.stdout)}.abcd{TEMP_SUFFIX}"
    live = tmp_path / f".b.png.{os.getpid()}.abcd{TEMP_SUFFIX}"
    other = tmp_path / ".c.png.notapid.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    assert remove_stale_temps([tmp_path]) == 1
    assert not stale.exists() and live.exists() and other.exists()
