"""`imgcheck scan` end to end: formats, exit codes, hostile inputs, model errors, cheap --help."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from fixtures_cli import run_cli
from fixtures_onnx import colourful, muted, write_detector, write_model_folder
from PIL import Image

from imgcheck import cli_scan
from imgcheck import decode as decode_mod


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


def invoke(args: list[str], model_dir: Path | None, **kwargs: object) -> object:
    extra = ["--model", str(model_dir)] if model_dir else []
    result = run_cli(["scan", *extra, "--workers", "2", *args], **kwargs)  # type: ignore[arg-type]
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return result


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(colourful(seed=1)).save(folder / "colour.png")
    Image.fromarray(muted(seed=2)).save(folder / "muted.png")
    Image.fromarray(muted(seed=3)[..., 0], "L").save(folder / "grey.png")
    return folder


def test_csv_when_piped_and_exit_codes(photos: Path, model_dir: Path) -> None:
    result = invoke([str(photos)], model_dir)
    assert result.exit_code == 1  # one image flagged
    got = {Path(r["path"]).name: (r["status"], r["verdict"]) for r in rows(result.stdout)}
    assert got == {
        "colour.png": ("ok", "colorized"),
        "grey.png": ("grayscale", "n/a"),
        "muted.png": ("ok", "real"),
    }
    assert list(rows(result.stdout)[0]) == [
        "path", "status", "score", "verdict", "width", "height", "format", "error", "stage",
    ]  # fmt: skip
    summary = result.stderr.strip().splitlines()[-1]
    assert "3 images" in summary and "1 colorized" in summary and "1 real" in summary
    assert "images/s" in summary and "cpu" in summary and "1 grayscale" in summary
    assert invoke([str(photos / "muted.png"), str(photos / "grey.png")], model_dir).exit_code == 0
    assert invoke([str(photos), "--exit-zero"], model_dir).exit_code == 0
    assert invoke([str(photos), "--threshold", "1"], model_dir).exit_code == 0


def test_fail_on_error(photos: Path, model_dir: Path) -> None:
    (photos / "colour.png").unlink()
    (photos / "bad.jpg").write_text("text")
    assert invoke([str(photos)], model_dir).exit_code == 0
    result = invoke([str(photos), "--fail-on-error"], model_dir)
    assert result.exit_code == 1 and "1 errors" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl", "html", "sarif"])
def test_every_format(photos: Path, model_dir: Path, fmt: str) -> None:
    result = invoke([str(photos), "--report", fmt], model_dir)
    assert result.exit_code == 1 and "colorized" in result.stdout
    if fmt in ("json", "sarif"):
        json.loads(result.stdout)
    if fmt == "jsonl":
        assert len([json.loads(line) for line in result.stdout.splitlines()]) >= 3


def test_output_file_format_from_extension(photos: Path, model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = invoke([str(photos), "-o", str(target), "-q"], model_dir)
    assert result.exit_code == 1 and result.stdout == ""
    assert "colour.png" in target.read_text()
    json.loads(target.read_text())


def test_model_errors_exit_2_and_leave_no_report(
    photos: Path, tmp_path: Path, model_dir: Path
) -> None:
    target = tmp_path / "out.csv"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01garbage")
    for bad in (junk, tmp_path / "nothing", write_model_folder(tmp_path / "m2", corrupt_sha=True)):
        result = invoke([str(photos), "--model", str(bad), "-o", str(target)], None)
        assert result.exit_code == 2, result.output
        assert "imgcheck scan: error:" in result.stderr
        assert not target.exists()
    colorizer = write_detector(tmp_path / "c.onnx", kind="colorizer")
    result = invoke([str(photos), "--model", str(colorizer)], None)
    assert result.exit_code == 2 and "not an imgcheck detector" in result.stderr


def test_cuda_without_cuda_exits_2(photos: Path, model_dir: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    result = invoke([str(photos), "--device", "cuda"], model_dir)
    assert result.exit_code == 2 and "cuda" in result.stderr.lower()


def test_usage_errors_exit_2(photos: Path, model_dir: Path) -> None:
    assert invoke([], model_dir).exit_code == 2
    result = invoke([str(photos), str(photos / "typo")], model_dir)
    assert result.exit_code == 2 and "no such file or directory" in result.stderr
    result = invoke([str(photos / "*.gif")], model_dir, input="")
    assert result.exit_code == 2 and "no files match" in result.stderr
    assert invoke([str(photos), "--threshold", "1.5"], model_dir).exit_code == 2
    assert invoke([str(photos), "--report", "xml"], model_dir).exit_code == 2
    result = invoke([str(photos), "--view", "colour=blue"], model_dir)
    assert result.exit_code == 2 and "view" in result.stderr


def test_internal_error_is_one_line(
    photos: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgcheck import scanning as scan_mod

    def boom(self: object, items: object) -> None:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(scan_mod.Scanner, "run", boom)
    result = invoke([str(photos)], model_dir)
    assert result.exit_code == 2
    assert "internal error: RuntimeError: something broke" in result.stderr
    assert "second line" not in result.stderr


def test_stdin_and_hidden_view(photos: Path, model_dir: Path) -> None:
    listing = f"{photos / 'colour.png'}\n{photos / 'muted.png'}\n"
    result = invoke(["-", "--view", "grid=1"], model_dir, input=listing)
    assert [Path(r["path"]).name for r in rows(result.stdout)] == ["colour.png", "muted.png"]


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _hostile_folder(folder: Path) -> dict[str, str]:
    """Every bad input of the issue -> the status its row must have."""
    folder.mkdir()
    expect: dict[str, str] = {}

    def colour(name: str, fmt: str | None = None, size: tuple[int, int] = (96, 80)) -> None:
        Image.fromarray(colourful(*size)).save(folder / name, fmt)
        # Below the test detector's 64-px tile on a side: a too_small row, not a score.
        expect[name] = "ok" if min(size) >= 64 else "too_small"

    (folder / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(colourful(200, 100)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[:600])
    (folder / "text.jpg").write_text("just text\n")
    (folder / "bomb.png").write_bytes(_png_header_only(40_000, 40_000))
    expect |= dict.fromkeys(["zero.jpg", "truncated.jpg", "text.jpg", "bomb.png"], "error")
    Image.new("CMYK", (80, 80), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    expect["cmyk.jpg"] = "ok"
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(folder / "deep16.png")
    expect["deep16.png"] = "grayscale"
    pal = Image.new("P", (64, 64), 0)
    pal.putpalette([255, 0, 0, 0, 200, 0] + [0] * 762)
    pal.paste(1, (0, 0, 32, 64))
    pal.save(folder / "palette.png", transparency=0)
    expect["palette.png"] = "ok"
    frames = [Image.fromarray(colourful(64, 64, seed=s)) for s in range(3)]
    for name in ("anim.gif", "anim.webp"):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=40)
        expect[name] = "ok"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(colourful(160, 80)).save(folder / "rotated.jpg", exif=exif.tobytes())
    expect["rotated.jpg"] = "ok"
    colour("one.png", size=(1, 1))
    colour("wide.png", size=(10_000, 10))
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    expect["dangling.jpg"] = "error"
    _sub = folder / "dir.jpg"
    _sub.mkdir()
    colour("dir.jpg/inside.png")
    for name in (
        "a,b.png",
        'quo"te.png',
        "new\nline.png",
        "=cmd.png",
        "+x.png",
        "-x.png",
        "@x.png",
    ):
        colour(name)
    with open(os.fsencode(folder) + b"/caf\xe9.png", "wb") as fh:
        Image.fromarray(colourful()).save(fh, "PNG")
    expect["caf\\xe9.png"] = "ok"
    return expect


def test_hostile_inputs_each_get_a_row(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expect = _hostile_folder(tmp_path / "bad")
    monkeypatch.chdir(tmp_path / "bad")  # relative names, so `=cmd.png` starts a CSV cell
    result = invoke(["."], model_dir)
    assert result.exit_code == 1
    got = {r["path"].removeprefix("./"): r for r in rows(result.stdout)}
    assert {k: got[k]["status"] for k in expect if k in got} == expect
    assert len(got) == len(expect)
    assert (got["rotated.jpg"]["width"], got["rotated.jpg"]["height"]) == ("80", "160")
    assert got["one.png"]["verdict"] == "n/a" and got["one.png"]["error"].startswith(
        "too small to judge: 1x1 px"
    )
    assert got["bomb.png"]["error"].startswith("image too large")
    assert got["dangling.jpg"]["error"] == "broken symlink"
    assert got["anim.gif"]["format"] == "GIF" and got["cmyk.jpg"]["verdict"] == "colorized"
    # Formula injection: names beginning =,+,-,@ come out as ./NAME: text for a spreadsheet,
    # and still a path that opens the file.
    listing = "".join(f"{n}\n" for n in ("=cmd.png", "+x.png", "-x.png", "@x.png"))
    cells = [r["path"] for r in rows(invoke(["-"], model_dir, input=listing).stdout)]
    assert cells == ["./=cmd.png", "./+x.png", "./-x.png", "./@x.png"]
    assert all(os.path.isfile(c) for c in cells)


def test_unreadable_file_row(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.png"
    Image.fromarray(colourful()).save(path)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Tests run as root (chmod cannot lock root out): the refusal is simulated in decode.
    monkeypatch.setattr(decode_mod, "open_regular", denied)
    result = invoke([str(path), "--fail-on-error"], model_dir)
    assert result.exit_code == 1
    assert rows(result.stdout)[0]["error"] == "permission denied"


def test_batch_size_default_has_one_home() -> None:
    import inspect

    from imgcheck.options import DEFAULT_BATCH_SIZE, ScanOptions
    from imgcheck.scanning import Scanner

    flag = inspect.signature(cli_scan.scan_command).parameters["batch_size"].default
    assert flag.default == DEFAULT_BATCH_SIZE == ScanOptions().batch_size
    assert inspect.signature(Scanner).parameters["batch_size"].default == DEFAULT_BATCH_SIZE


def test_scan_options_from_cli_params() -> None:
    from imgcheck.options import ScanOptions
    from imgcheck.session import Device

    opts = ScanOptions.from_params(
        {"paths": ["a.jpg"], "device": Device.CPU, "output": "r.csv", "ctx_only": 1}
    )
    assert opts.device == "cpu" and opts.output == Path("r.csv") and opts.paths == ["a.jpg"]
    assert opts.with_settings({"model": "m"}).model == Path("m")


def test_exit_code_rule() -> None:
    code = cli_scan._exit_code
    assert code(0, 0, fail_on_error=False, exit_zero=False) == 0
    assert code(2, 0, fail_on_error=False, exit_zero=False) == 1
    assert code(0, 3, fail_on_error=False, exit_zero=False) == 0
    assert code(0, 3, fail_on_error=True, exit_zero=False) == 1
    assert code(5, 3, fail_on_error=True, exit_zero=True) == 0


_HELP_PROBE = """
import sys
from imgcheck.cli import main
try:
    main(["{cmd}", "--help"])
except SystemExit:
    pass
heavy = [m for m in ("onnxruntime", "torch", "numpy", "PIL") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("cmd", ["scan", "colorize", "evaluate", "train", "export"])
def test_help_imports_nothing_heavy(cmd: str) -> None:
    """The real root app, as the console script runs it: --help loads no numpy, Pillow,
    onnxruntime or torch (and an import error in any command module fails here)."""
    out = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE.replace("{cmd}", cmd)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"Usage: imgcheck {cmd}" in out
    if cmd == "scan":
        assert "--batch-size" in out and "--view" not in out  # --view is hidden
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_root_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from imgcheck.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(m for m in ('onnxruntime', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "scan" in out and "export" in out
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_progress_bar_off_when_not_interactive() -> None:
    from rich.console import Console

    from imgcheck.progress import ScanProgress

    piped = ScanProgress(Console(file=io.StringIO()))
    assert not piped.active
    stream = io.StringIO()
    assert piped.report_stream(stream) is stream
    tty = Console(file=io.StringIO(), force_terminal=True, force_interactive=True)
    assert ScanProgress(tty).active and not ScanProgress(tty, enabled=False).active


def test_filters_recursion_globs_and_empty_runs(tmp_path: Path, model_dir: Path) -> None:
    for rel in ("a.png", "skip.png", "sub/b.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(muted()).save(tmp_path / rel)

    def names(*args: str) -> list[str]:
        result = invoke(list(args), model_dir)
        assert result.exit_code == 0, result.output
        return [os.path.relpath(r["path"], tmp_path) for r in rows(result.stdout)]

    assert names(str(tmp_path)) == ["a.png", "skip.png", "sub/b.png"]
    assert names(str(tmp_path), "--no-recursive") == ["a.png", "skip.png"]
    assert names(str(tmp_path), "--exclude", "skip.png", "--include", "*.png") == [
        "a.png",
        "sub/b.png",
    ]
    assert names(str(tmp_path / "**" / "b.png")) == ["sub/b.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke([str(empty)], model_dir)
    assert result.exit_code == 0 and "imgcheck: 0 images" in result.stderr


def test_output_to_fifo_symlink_and_directory(
    photos: Path, model_dir: Path, tmp_path: Path
) -> None:
    """-o never replaces what is not a plain file: FIFOs/devices are written in place (as root,
    an atomic rename onto /dev/null would replace the device), symlinks stay symlinks."""
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert invoke([str(photos), "-o", str(fifo)], model_dir).exit_code == 1
    reader.join(timeout=30)
    assert "colour.png" in got[0] and fifo.is_fifo()

    real = tmp_path / "real.csv"
    real.write_text("path,status,score,verdict,width,height,format,error\r\n")  # an old report
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert invoke([str(photos), "-o", str(link)], model_dir).exit_code == 1
    assert link.is_symlink() and "colour.png" in real.read_text()

    result = invoke([str(photos), "-o", str(tmp_path)], model_dir)
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_variant_option(photos: Path, tmp_path: Path, model_dir: Path) -> None:
    folder = write_model_folder(tmp_path / "mv", variants=("int8",))
    result = invoke([str(photos), "--variant", "int8", "-q"], folder)
    assert result.exit_code == 1, result.output
    assert {Path(r["path"]).name for r in rows(result.stdout)} >= {"colour.png", "muted.png"}
    assert "cpu, int8, threshold 0.500" in result.stderr  # the summary line names it
    result = invoke([str(photos), "--variant", "fp32", "-q"], folder)
    assert result.exit_code == 1 and "int8" not in result.stderr
    # Not shipped (or a bare .onnx): a usage error naming what is shipped, no report written.
    target = tmp_path / "out.csv"
    result = invoke([str(photos), "--variant", "fp16", "-o", str(target)], folder)
    assert result.exit_code == 2 and not target.exists()
    assert "imgcheck scan: error:" in result.stderr
    assert "no fp16 detector variant (available: fp32, int8)" in result.stderr
    result = invoke([str(photos), "--variant", "int8"], model_dir)
    assert result.exit_code == 2 and "available: fp32)" in result.stderr
    bare = write_detector(tmp_path / "d.onnx")
    result = invoke([str(photos), "--model", str(bare), "--variant", "int8"], None)
    assert result.exit_code == 2 and "single .onnx file" in result.stderr
    assert invoke([str(photos), "--variant", "int4"], folder).exit_code == 2


def test_every_scan_flag_lands_in_scan_options() -> None:
    """A new scan option needs its ScanOptions field, or from_params would drop it."""
    import inspect
    from dataclasses import fields

    from imgcheck.options import ScanOptions

    params = set(inspect.signature(cli_scan.scan_command).parameters) - {"ctx"}
    assert params == {f.name for f in fields(ScanOptions)}


def test_progress_rate_is_the_average_not_a_burst() -> None:
    """A batch of 8 results arriving together must not read as 75,000 images/s."""
    from rich.progress import Progress

    from imgcheck.progress import _RateColumn

    now = [0.0]
    progress = Progress(get_time=lambda: now[0])
    task_id = progress.add_task("scan", total=None)
    column, task = _RateColumn(), progress.tasks[0]
    now[0] = 0.0001
    progress.update(task_id, advance=8)
    assert column.render(task).plain == "- images/s"  # too early to say
    now[0] = 2.0
    progress.update(task_id, advance=2)
    assert column.render(task).plain == "5.0 images/s"  # 10 images in 2 s
