"""`imgcheck colorize`: what a user sees on disk and in the exit code (fake model via --model)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_cli import Ran, run_cli
from fixtures_colorizer import TINT, expected_colorized, write_colorizer_file
from PIL import Image

from imgcheck.outputs import TEMP_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
# The real entry point (imgcheck.cli.main), as the console script runs it.
SCRIPT = "import sys; from imgcheck.cli import main; main(['colorize', *sys.argv[1:]])"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colorizer_file(tmp_path_factory.mktemp("model") / "colorizer.onnx")


def cli(model: Path, *args: object, stdin: str | None = None) -> Ran:
    argv = [str(a) for a in args] + ["--model", str(model), "--device", "cpu", "--workers", "2"]
    return run_cli(["colorize", *argv], input=stdin)


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8))


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _tint_of(image: Image.Image) -> int:
    """Median R - B of an output: the fake model's tint (48) means it really was colorized."""
    arr = np.asarray(image.convert("RGB")).astype(int)
    return int(np.median(arr[..., 0] - arr[..., 2]))


def _photos(folder: Path) -> Path:
    (folder / "trip" / "day1").mkdir(parents=True)
    _noise(64, 48, 1).save(folder / "trip" / "day1" / "colour.jpg", quality=95)
    Image.new("L", (40, 30), 90).save(folder / "trip" / "grey.png")
    Image.new("RGB", (20, 20), (120, 120, 120)).save(folder / "equal-rgb.webp")
    Image.fromarray(np.full((10, 12), 40000, np.uint16)).save(folder / "deep16.png")
    Image.new("RGB", (16, 16), (100, 100, 100)).convert("P").save(folder / "palette.gif")
    return folder


def test_tree_is_mirrored_and_inputs_are_untouched(tmp_path: Path, model: Path) -> None:
    src = _photos(tmp_path / "in")
    before = _hashes(src)
    result = cli(model, src, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert _hashes(src) == before
    out = tmp_path / "out"
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [
        "deep16.png",
        "equal-rgb.webp",
        "palette.png",  # GIF cannot hold the colours: --format same falls back to PNG
        "trip/day1/colour.jpg",
        "trip/grey.png",
    ]
    for name in names:
        with Image.open(out / name) as im:
            assert im.mode == "RGB"
            assert _tint_of(im) in range(44, 53), name
    with Image.open(out / "trip" / "grey.png") as im:
        assert im.size == (40, 30)
        assert np.array_equal(
            np.asarray(im), expected_colorized(np.full((30, 40, 3), 90, np.uint8))
        )
    with Image.open(out / "deep16.png") as im:  # 16-bit scaled to 8 bits, not clipped to white
        assert np.asarray(im)[0, 0, 1] == round(40000 / 257)
    assert "5 written" in result.output and "1 colour inputs greyed first" in result.output


def test_size_is_kept_and_exif_orientation_applied(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(1500, 700).save(src / "wide.png")
    stored = np.zeros((30, 40), np.uint8)  # 40 wide, 30 high as stored ...
    stored[:, :20] = 200  # ... with the left half bright
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.fromarray(stored).save(src / "rotated.jpg", exif=exif.tobytes(), quality=100)
    result = cli(model, src, "-o", tmp_path / "out", "--format", "png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "wide.png") as im:
        assert im.size == (1500, 700)
    with Image.open(tmp_path / "out" / "rotated.png") as im:
        assert im.size == (30, 40) and not im.getexif().get(0x0112)
        arr = np.asarray(im).astype(int)
    assert arr[:20, :, 1].mean() > 150 > arr[20:, :, 1].mean()  # left half -> top half


@pytest.mark.parametrize(
    ("fmt", "suffix", "pil"),
    [("jpg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP"), ("png", ".png", "PNG")],
)
def test_format_and_quality(tmp_path: Path, model: Path, fmt: str, suffix: str, pil: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(96, 64).save(src / "a.png")
    sizes = []
    for quality in (20, 95):
        out = tmp_path / f"out{quality}"
        assert cli(model, src, "-o", out, "--format", fmt, "--quality", quality).exit_code == 0
        with Image.open(out / f"a{suffix}") as im:
            assert im.format == pil and im.size == (96, 64)
        sizes.append((out / f"a{suffix}").stat().st_size)
    if fmt == "png":
        assert sizes[0] == sizes[1]  # lossless: quality does not apply
    else:
        assert sizes[0] < sizes[1]


def test_compare_view_is_written(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(50, 40).save(src / "a.png")
    assert cli(model, src, "-o", tmp_path / "out", "--compare").exit_code == 0
    with Image.open(tmp_path / "out" / "a.compare.png") as im:
        arr = np.asarray(im)
    top = arr.shape[0] - 40  # the label strip above the three panels
    assert top > 0 and arr.shape[1:] == (3 * 50 + 16, 3)
    arr = arr[top:]
    assert np.array_equal(arr[:, :50], np.asarray(Image.open(src / "a.png")))
    grey = arr[:, 58:108].astype(int)
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert _tint_of(Image.fromarray(arr[:, 116:])) == TINT[0] - TINT[2]


def test_outdir_equal_to_input_folder_is_refused(tmp_path: Path, model: Path) -> None:
    src = _photos(tmp_path / "in")
    before = _hashes(src)
    result = cli(model, src, "-o", src)
    assert result.exit_code == 2
    assert "would overwrite input" in result.output and "refusing" in result.output
    assert _hashes(src) == before  # nothing written, nothing replaced
    # also refused when only some names collide (a.jpg -> a.png, but a.png is itself an input)
    (src / "x.jpg").write_bytes((src / "trip" / "day1" / "colour.jpg").read_bytes())
    _noise(8, 8).save(src / "x.png")
    before = _hashes(src)
    result = cli(model, src, "-o", src, "--format", "png")
    assert result.exit_code == 2 and "x.png" in result.output
    assert _hashes(src) == before and not list(src.rglob(f"*{TEMP_SUFFIX}"))


def test_no_collision_next_to_inputs_is_allowed(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(16, 16).save(src / "a.jpg")
    result = cli(model, src / "a.jpg", "-o", src, "--format", "png")
    assert result.exit_code == 0, result.output
    assert (src / "a.png").is_file()


def test_outdir_inside_input_folder_is_not_rescanned(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(16, 16).save(src / "a.png")
    out = src / "colorized"
    assert cli(model, src, "-o", out).exit_code == 0
    again = cli(model, src, "-o", out)
    assert again.exit_code == 0, again.output
    assert "1 skipped" in again.output and "1 files inside --outdir left out" in again.output
    assert sorted(p.name for p in out.rglob("*")) == ["a.png"]


def test_escape_through_symlinked_folder_is_an_error_row(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _noise(16, 16).save(src / "sub" / "a.png")
    _noise(16, 16).save(src / "b.png")
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere)
    (out / "b.png").symlink_to(elsewhere / "victim.png")
    result = cli(model, src, "-o", out)
    assert result.exit_code == 1
    assert "escape" in result.output and "symlink" in result.output
    assert list(elsewhere.iterdir()) == []


def test_weird_names_stay_inside(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    names = ["..png", "..x.png", "-dash.png", "sp ace [1].png", "ünï.png", "a\\b.png"]
    for name in names:
        _noise(8, 8).save(src / name, format="PNG")
    result = cli(model, *(src / name for name in names), "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]


def test_bad_inputs_get_rows_and_exit_1(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(16, 16).save(src / "good.png")
    (src / "text.jpg").write_text("not an image")
    (src / "empty.png").write_bytes(b"")
    result = cli(model, src, tmp_path / "missing.jpg", "-o", tmp_path / "out")
    assert result.exit_code == 1
    for name, why in [
        ("text.jpg", "not an image"),
        ("empty.png", "empty"),
        ("missing.jpg", "no such file"),
    ]:
        line = next(line for line in result.output.splitlines() if name in line)
        assert why in line
    assert "Traceback" not in result.output
    assert "1 written" in result.output and "3 errors" in result.output
    assert cli(model, src, "-o", tmp_path / "out", "--exit-zero").exit_code == 0
    quiet = cli(model, src, "-o", tmp_path / "out", "--quiet")
    assert quiet.exit_code == 1 and "text.jpg" in quiet.output and "imgcheck:" not in quiet.output
    limited = cli(model, src / "good.png", "-o", tmp_path / "out2", "--max-pixels", 100)
    assert limited.exit_code == 1 and "too large" in limited.output


def test_rerun_skips_and_overwrite_replaces(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(16, 16).save(src / "a.png")
    out = tmp_path / "out"
    assert cli(model, src, "-o", out).exit_code == 0
    (out / "a.png").write_bytes(b"marker")
    again = cli(model, src, "-o", out)
    assert "1 skipped" in again.output and (out / "a.png").read_bytes() == b"marker"
    assert "MP/s" not in again.output  # nothing was written: no "0.0 MP/s"
    assert len([line for line in again.output.splitlines() if "images in" in line]) == 1
    assert cli(model, src, "-o", out, "--overwrite").exit_code == 0
    with Image.open(out / "a.png") as im:
        assert im.size == (16, 16)


def test_stdin_and_glob_inputs(tmp_path: Path, model: Path) -> None:
    src = _photos(tmp_path / "in")
    listed = f"{src / 'trip' / 'grey.png'}\n{src / 'trip' / 'day1'}\n"
    result = cli(model, "-", "-o", tmp_path / "a", stdin=listed)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == ["colour.jpg", "grey.png"]
    result = cli(model, f"{src}/**/*.jpg", "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "trip" / "day1" / "colour.jpg").is_file()  # relative to the glob base


def test_model_and_device_errors_exit_2(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _noise(8, 8).save(src / "a.png")
    bad = run_cli(
        ["colorize", src, "-o", tmp_path / "o", "--model", tmp_path / "nope.onnx"]
    )
    assert bad.exit_code == 2 and "model file not found" in bad.output
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        r = run_cli(["colorize", src, "-o", tmp_path / "o", "--model", model, "--device", "cuda"])
        assert r.exit_code == 2 and "--device cuda" in r.output
    assert not (tmp_path / "o").exists()


def _many(src: Path, count: int) -> None:
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (240, 320, 3), np.uint8)
        Image.fromarray(pixels).save(src / f"{i:02}.png", compress_level=0)


def _start(
    src: Path, out: Path, model: Path
) -> tuple[list[str], dict[str, str], subprocess.Popen[bytes]]:
    """Start the CLI in a subprocess and return once its first output exists."""
    argv = [sys.executable, "-c", SCRIPT, str(src), "-o", str(out), "--model", str(model),
            "--device", "cpu", "--workers", "1", "--batch-size", "2", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return argv, env, proc


def _all_valid(out: Path, count: int) -> None:
    """Every file in `out` is a complete output of one of the `count` inputs (no temp files)."""
    outputs = sorted(out.iterdir())
    assert {p.name for p in outputs} <= {f"{i:02}.png" for i in range(count)}
    for path in outputs:
        with Image.open(path) as im:
            im.load()
            assert im.size == (320, 240)


def test_killed_run_resumes_with_every_output_valid(tmp_path: Path, model: Path) -> None:
    """kill -9 after the first outputs appear; a rerun completes; no partial or temp files."""
    src, out = tmp_path / "in", tmp_path / "out"
    _many(src, 20)
    before = _hashes(src)
    argv, env, proc = _start(src, out, model)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < len(list(out.glob("*.png"))) < 20, "the kill should land mid-run"
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    _all_valid(out, 20)
    assert len(list(out.iterdir())) == 20
    assert _hashes(src) == before


def test_sigterm_stops_cleanly(tmp_path: Path, model: Path) -> None:
    """SIGTERM (a scheduler's stop) finishes running writes, leaves no temp file, exits 143."""
    src, out = tmp_path / "in", tmp_path / "out"
    _many(src, 12)
    _, _, proc = _start(src, out, model)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"rerun to resume" in err and b"Traceback" not in err
    assert len(list(out.iterdir())) < 12
    _all_valid(out, 12)
