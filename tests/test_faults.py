"""Fault injection: what scan, colorize and train promise when the machine or the user is hostile.

Each test keeps one promise of the README's "Safety" section (issue 15): a full disk (a real
64 KiB tmpfs where the test may mount one in a private mount namespace, else an injected
ENOSPC), kill -9 and SIGTERM mid-write, files swapped or deleted during a scan, symlinks
appearing during a run, hostile manifests and checkpoints. CPU only, no ../shared, small images.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_colorizer import write_colorizer_file
from PIL import Image

from imgcheck import atomic
from imgcheck import colorizing as cz
from imgcheck.atomic import TEMP_SUFFIX, atomic_open, atomic_write, remove_stale_temps
from imgcheck.outputs import Format, OutputPlanner, save_image

ROOT = Path(__file__).resolve().parents[1]


def _noise(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8))


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def _python(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        **kwargs,  # type: ignore[arg-type]
    )


# --- full disk -----------------------------------------------------------------------------


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


FULL_DISK = """
import sys
import numpy as np
from pathlib import Path
from PIL import Image
from imgcheck.outputs import save_image
folder = Path(sys.argv[1])
im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), np.uint8))
try:
    save_image(im, folder / "a.png", "PNG", root=folder)
except OSError as exc:
    print("error", exc.errno)
else:
    print("written")
print(sorted(p.name for p in folder.iterdir()))
"""


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs here (no unshare -rm)")
def test_full_tmpfs_write_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    """A 64 KiB tmpfs and a ~120 KB PNG: the write fails loudly, nothing is left behind."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    cmd = f"mount -t tmpfs -o size=64k tmpfs {mnt} && {sys.executable} {script} {mnt}"
    out = subprocess.run(
        ["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] in (f"error {errno.ENOSPC}", f"error {errno.EIO}"), out.stdout
    assert lines[1] == "[]"  # neither a truncated a.jpg nor a temp file


def _fail_after(monkeypatch: pytest.MonkeyPatch, budget: int, err: int = errno.ENOSPC) -> None:
    """os.write in the atomic writer: accepts `budget` bytes, then a short write, then `err`."""
    real = os.write
    left = [budget]

    def write(fd: int, data: bytes) -> int:
        if left[0] <= 0:
            raise OSError(err, os.strerror(err))
        n = min(len(data), left[0])
        left[0] -= n
        return real(fd, bytes(data[:n]))

    monkeypatch.setattr(atomic.os, "write", write)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_injected_disk_error_surfaces_and_old_file_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(b"old complete file")
    _fail_after(monkeypatch, 4096, err)
    with pytest.raises(OSError) as info:
        save_image(_noise(200, 200), target, "JPEG", 95, root=tmp_path)
    assert info.value.errno == err
    assert target.read_bytes() == b"old complete file"
    assert _temps(tmp_path) == []


def test_incompressible_jpeg_is_still_written(tmp_path: Path) -> None:
    """Not a disk fault, but the same symptom: libjpeg's optimizer overflowing Pillow's buffer
    is retried without optimisation instead of failing the image."""
    save_image(_noise(200, 200), tmp_path / "n.jpg", "JPEG", 95, root=tmp_path)
    assert Image.open(tmp_path / "n.jpg").size == (200, 200)


def test_short_writes_are_completed_not_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.write
    monkeypatch.setattr(atomic.os, "write", lambda fd, data: real(fd, bytes(data[:100])))
    atomic_write(tmp_path / "x.bin", lambda s: s.write(b"z" * 10_000))
    assert (tmp_path / "x.bin").read_bytes() == b"z" * 10_000


def test_size_mismatch_before_rename_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reached the disk is checked against what was written (fstat) before the rename."""
    real = os.fstat

    class Shrunk:
        def __init__(self, st: os.stat_result) -> None:
            self.st_size = st.st_size - 1

    monkeypatch.setattr(atomic.os, "fstat", lambda fd: Shrunk(real(fd)))
    with pytest.raises(OSError, match="short write"):
        atomic_write(tmp_path / "x.bin", lambda s: s.write(b"abc"))
    assert list(tmp_path.iterdir()) == []


def test_colorize_full_disk_is_an_error_row_and_a_rerun_redoes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.png"
    _noise(200, 160).save(src)
    out = tmp_path / "out"
    model = write_colorizer_file(tmp_path / "c.onnx")
    colorizer = cz.Colorizer(model, "cpu")

    def run() -> list[cz.ColorizeResult]:
        planner = OutputPlanner(out, [src], Format.PNG)
        job = cz.Job(str(src), src.name, planner.plan(src.name, src))
        return list(cz.run_jobs([job], colorizer, workers=1))

    _fail_after(monkeypatch, 2048)
    [result] = run()
    assert result.outcome is cz.Outcome.ERROR and "no space left" in (result.error or "").lower()
    assert not (out / "in.png").exists() and _temps(tmp_path) == []
    monkeypatch.undo()
    [again] = run()  # nothing was left to be mistaken for a finished output
    assert again.outcome is cz.Outcome.WRITTEN
    assert Image.open(out / "in.png").size == (200, 160)


# --- kill -9 and signals mid-write ---------------------------------------------------------


KILLED_WRITER = """
import sys, time
from imgcheck.atomic import atomic_open
with atomic_open(sys.argv[1], "wb") as f:
    f.write(b"half of the new")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def _start_writer(tmp_path: Path, target: Path) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_kill_9_mid_write_leaves_old_file_and_a_sweepable_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old")
    proc = _start_writer(tmp_path, target)
    assert len(_temps(tmp_path)) == 1 and remove_stale_temps([tmp_path]) == 0  # writer alive
    proc.kill()
    proc.wait(10)
    assert target.read_text() == "old"
    assert remove_stale_temps([tmp_path]) == 1 and _temps(tmp_path) == []


# --- symlinks appearing in the output tree -------------------------------------------------


def test_symlinked_folder_after_planning_cannot_redirect_a_write(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "sub").mkdir(parents=True)
    outside.mkdir()
    target = OutputPlanner(out, [], Format.PNG).plan("sub/a.png", "a.png")
    (out / "sub").rmdir()
    (out / "sub").symlink_to(outside)  # swapped in between planning and writing
    with pytest.raises(OSError, match="symlink"):
        save_image(_noise(), target.output, "PNG", root=target.root)
    assert list(outside.iterdir()) == []


def test_symlinked_file_after_planning_is_not_written_through(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.png"
    out.mkdir()
    victim.write_bytes(b"precious")
    src = tmp_path / "in.png"
    _noise().save(src)
    planner = OutputPlanner(out, [src], Format.PNG)
    job = cz.Job(str(src), src.name, planner.plan(src.name, src))
    (out / "in.png").symlink_to(victim)  # appears while the run is going
    model = write_colorizer_file(tmp_path / "c.onnx")
    [result] = cz.run_jobs([job], cz.Colorizer(model, "cpu"), workers=1)
    assert result.outcome is cz.Outcome.ERROR and "symlink" in (result.error or "")
    assert victim.read_bytes() == b"precious" and (out / "in.png").is_symlink()
    assert _temps(tmp_path) == []


def test_without_root_a_symlinked_report_is_still_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old")
    (tmp_path / "link.csv").symlink_to(real)
    with atomic_open(tmp_path / "link.csv", "w", encoding="utf-8") as f:
        f.write("new")
    assert (tmp_path / "link.csv").is_symlink() and real.read_text() == "new"


# --- read-only targets ---------------------------------------------------------------------


def test_read_only_target_is_refused_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        atomic_write(target, lambda s: s.write(b"new"))
    assert target.read_text() == "old" and (target.stat().st_mode & 0o777) == 0o444
    target.chmod(0o640)
    atomic_write(target, lambda s: s.write(b"new"))
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640


# --- files swapped or deleted during a scan ------------------------------------------------


def _within(seconds: float, fn, *args):
    """Run fn in a daemon thread; a blocked open() fails the test instead of hanging it."""
    import threading

    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"{getattr(fn, '__name__', fn)} blocked for {seconds} s"
    return box[0]


@pytest.fixture
def scanner(tmp_path: Path):
    from fixtures_onnx import write_model_folder

    from imgcheck.scanning import Scanner

    return Scanner(write_model_folder(tmp_path / "model"), "cpu", workers=2)


def test_file_swapped_for_a_fifo_after_the_walk_is_an_error_row(tmp_path: Path, scanner) -> None:
    from imgcheck.inputs import InputItem

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)  # the walk saw a JPEG here; now it is a pipe nobody writes to
    [result] = _within(20, lambda: list(scanner.run([InputItem(str(fifo))])))
    assert result.status.value == "error" and result.error == "not a regular file"


def test_sniffing_an_extensionless_fifo_does_not_block(tmp_path: Path) -> None:
    from imgcheck import inputs

    os.mkfifo(tmp_path / "photo")
    assert _within(10, inputs._looks_like_image, str(tmp_path / "photo"), "photo") is False


def test_file_deleted_after_the_walk_is_an_error_row(tmp_path: Path, scanner) -> None:
    from imgcheck.inputs import InputItem

    _noise(96, 80).save(tmp_path / "a.png")
    items = [InputItem(str(tmp_path / "a.png")), InputItem(str(tmp_path / "gone.png"))]
    ok, gone = scanner.run(items)
    assert ok.status.value == "ok"
    assert gone.status.value == "error" and gone.error == "no such file or directory"


# --- scan -o: never over an input, only over our own reports -------------------------------

# The real entry point (imgcheck.cli.main: the registered root app and its error contract).
SCAN = "import sys; from imgcheck.cli import main; main(['scan', *sys.argv[1:]])"
COLORIZE = "import sys; from imgcheck.cli import main; main(['colorize', *sys.argv[1:]])"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_onnx import write_model_folder

    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    _noise(64, 48, 1).save(folder / "a.jpg")
    _noise(64, 48, 2).save(folder / "b.png")
    return folder


def scan_cli(model_dir: Path, *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", SCAN, *map(str, args), "--model", str(model_dir)]
    argv += ["--workers", "2", "--device", "cpu"]
    kwargs.setdefault("capture_output", True)
    return subprocess.run(argv, text=True, timeout=120, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def _digest(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_scan_output_onto_an_input_is_refused(
    tmp_path: Path, photos: Path, model_dir: Path
) -> None:
    before = _digest(photos)
    os.link(photos / "a.jpg", tmp_path / "hard.jpg")
    (tmp_path / "sym.csv").symlink_to(photos / "b.png")
    for args in (
        [photos, "-o", photos / "a.jpg"],  # an image inside the scanned folder
        [photos / "b.png", "-o", photos / "b.png"],  # the file named
        [photos / "a.jpg", "-o", tmp_path / "hard.jpg"],  # through a hard link
        [photos / "b.png", "-o", tmp_path / "sym.csv", "--force"],  # a symlink, even --force
    ):
        out = scan_cli(model_dir, *args)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "refusing to overwrite" in out.stderr
    assert _digest(photos) == before


def test_scan_output_onto_a_foreign_file_needs_force(photos: Path, model_dir: Path) -> None:
    notes = photos.parent / "notes.txt"
    notes.write_text("my notes\n")
    out = scan_cli(model_dir, photos, "-o", notes)
    assert out.returncode == 2 and "not an imgcheck report" in out.stderr
    assert notes.read_text() == "my notes\n"
    assert scan_cli(model_dir, photos, "-o", notes, "--force").returncode in (0, 1)
    assert notes.read_text().startswith("path,status")
    report = photos.parent / "r.json"  # our own reports are replaced on a rerun
    for _ in range(2):
        assert scan_cli(model_dir, photos, "-o", report).returncode in (0, 1)


# --- signals mid-scan, stale temps ---------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_mid_scan_removes_the_temp_report(
    tmp_path: Path, photos: Path, model_dir: Path, sig: int, code: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    argv = [sys.executable, "-c", SCAN, "-", "-o", str(out / "r.csv"), "--model", str(model_dir)]
    proc = subprocess.Popen(
        [*argv, "--device", "cpu"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    proc.stdin.write(f"{photos / 'a.jpg'}\n")
    proc.stdin.flush()  # stdin stays open: the scan waits for more paths, its temp report open
    deadline = time.monotonic() + 60
    while not _temps(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _temps(out), "the scan never opened its report"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert list(out.iterdir()) == []  # no temp, and no half report
    assert "Traceback" not in err


def test_scan_sweeps_stale_temp_reports(tmp_path: Path, photos: Path, model_dir: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".r.csv.{dead.stdout.strip()}.0badf00d{TEMP_SUFFIX}"
    stale.write_text("half")
    assert scan_cli(model_dir, photos, "-o", tmp_path / "r.csv").returncode in (0, 1)
    assert not stale.exists() and (tmp_path / "r.csv").exists()


def test_sigterm_mid_colorize_exits_143_without_temps(tmp_path: Path) -> None:
    model = write_colorizer_file(tmp_path / "c.onnx")
    out = tmp_path / "out"
    argv = [sys.executable, "-c", COLORIZE, "-", "-o", str(out), "--model", str(model)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    time.sleep(3)  # model loaded, reading the input list from stdin
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and (not out.exists() or _temps(out) == [])


# --- what reaches a terminal ---------------------------------------------------------------

ESC_NAME = "x\x1b[31mred\x1b]0;pwned\x07.png"


def _on_pty(argv: list[str]) -> tuple[int, bytes]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks)


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_csv_on_a_terminal_prints_rows_and_no_escape_sequences(
    photos: Path, model_dir: Path, quiet: list[str]
) -> None:
    _noise(40, 40, 3).save(photos / ESC_NAME)
    argv = [sys.executable, "-c", SCAN, str(photos), "-f", "csv", "--model", str(model_dir)]
    code, shown = _on_pty([*argv, "--device", "cpu", *quiet])
    assert code in (0, 1), shown
    rows = [line for line in shown.split(b"\r\n") if line.count(b",") >= 7]
    assert len(rows) == 4, shown  # header + 3 images, none swallowed
    assert b"\x1b[31m" not in shown and b"\x1b]0;" not in shown
    assert b"x\\x1b[31mred" in shown


def test_usage_error_and_colorize_failures_escape_file_names(
    tmp_path: Path, model_dir: Path
) -> None:
    missing = tmp_path / ESC_NAME
    out = scan_cli(model_dir, missing)
    assert out.returncode == 2 and "\x1b" not in out.stderr and "\\x1b[31m" in out.stderr
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / ESC_NAME).write_bytes(b"not an image")
    model = write_colorizer_file(tmp_path / "c.onnx")
    argv = [
        sys.executable,
        "-c",
        COLORIZE,
        str(bad),
        "-o",
        str(tmp_path / "o"),
        "--model",
        str(model),
    ]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 1 and "could not be colorized" in res.stderr
    assert "\x1b" not in res.stderr and "\\x1b[31m" in res.stderr


# --- smaller: full stdout, unreadable folders, --workers bound ------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_full_stdout_is_one_clear_line(photos: Path, model_dir: Path) -> None:
    with open("/dev/full", "w") as full:
        out = scan_cli(
            model_dir,
            photos,
            "-f",
            "csv",
            stdout=full,
            stderr=subprocess.PIPE,
            capture_output=False,
        )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "imgcheck scan: error: cannot write to standard output: no space left on device"
    )


def test_path_under_unreadable_folder_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from imgcheck import cli_scan

    locked = str(tmp_path / "locked" / "a.jpg")
    real = os.lstat

    def lstat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path) == locked:  # tests run as root, where chmod 000 stops nothing
            raise PermissionError(errno.EACCES, "Permission denied", locked)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cli_scan.os, "lstat", lstat)
    with pytest.raises(typer.Exit) as info:
        cli_scan._check_paths([locked])
    assert info.value.exit_code == 2
    assert "permission denied: " + locked in capsys.readouterr().err


@pytest.mark.parametrize("command", [SCAN, COLORIZE])
def test_workers_has_an_upper_bound(tmp_path: Path, command: str) -> None:
    argv = [sys.executable, "-c", command, str(tmp_path), "--workers", "10000"]
    if command is COLORIZE:
        argv += ["-o", str(tmp_path / "o")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2 and "'--workers'" in out.stderr and "64" in out.stderr
    assert len(out.stderr.splitlines()) == 1  # one error line, not a help panel


# --- train --resume with a damaged or hostile run folder -----------------------------------


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _hostile_run(tmp_path: Path, what: str) -> Path:
    import pickle

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {}}))
    (run / "split.json").write_text(json.dumps({"data_digest": "x", "train": [], "val": []}))
    last = run / "checkpoints" / "last.pt"
    if what == "truncated":
        import torch

        torch.save({"step": 3, "G": {}}, last)
        last.write_bytes(last.read_bytes()[:50])
    elif what == "hostile":
        last.write_bytes(pickle.dumps(_Boom()))
    elif what == "config":
        import torch

        torch.save({"step": 3}, last)
        (run / "config.json").write_text('{"config": ')
    return run


@pytest.mark.torch
@pytest.mark.parametrize("what", ["truncated", "hostile", "config"])
def test_train_resume_from_a_damaged_run_is_one_line_exit_2(tmp_path: Path, what: str) -> None:
    pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    run = _hostile_run(tmp_path, what)
    data = tmp_path / "data"
    data.mkdir()
    code = "import sys; from imgcheck.cli import main; main(['train', *sys.argv[1:]])"
    argv = [sys.executable, "-c", code, "--data", str(data), "--out", str(run), "--resume"]
    out = subprocess.run(
        [*argv, "--device", "cpu", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("imgcheck train:") and "cannot" in out.stderr
    assert not (tmp_path / "PWNED").exists()


# --- hostile manifests ---------------------------------------------------------------------


def _edited_model(tmp_path: Path, edit) -> Path:
    from fixtures_onnx import write_model_folder

    folder = write_model_folder(tmp_path / "m")
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest["detector"])
    (folder / "manifest.json").write_text(json.dumps(manifest))  # NaN is written as NaN
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(threshold=5.0), "threshold must be strictly between 0 and 1"),
        (lambda d: d.update(threshold=float("nan")), "threshold must be strictly between"),
        (lambda d: d.update(threshold=-1), "threshold must be strictly between"),
        (lambda d: d.update(threshold="abc"), "threshold must be a number"),
        (lambda d: d.pop("sha256"), "sha256 is missing"),
        (lambda d: d.update(sha256=None), "sha256 is missing"),
        (lambda d: d.update(file="../detector.onnx"), "plain name inside the model folder"),
        (lambda d: d.update(file="/etc/passwd"), "plain name inside the model folder"),
        (lambda d: d.update(view={"crop": "big"}), "view must be an object of integers"),
    ],
)
def test_hostile_manifest_is_one_line_exit_2(
    tmp_path: Path, photos: Path, edit, message: str
) -> None:
    folder = _edited_model(tmp_path, edit)
    out = scan_cli(folder, photos)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr
    assert "internal error" not in out.stderr


def test_manifest_checks_also_guard_the_python_api(tmp_path: Path) -> None:
    from imgcheck.scanning import Scanner
    from imgcheck.session import ModelError

    folder = _edited_model(tmp_path, lambda d: d.update(threshold=5.0))
    with pytest.raises(ModelError, match="threshold"):
        Scanner(folder, "cpu")


# --- decode memory budget ------------------------------------------------------------------


def test_decode_budget_serialises_big_images_across_workers(tmp_path: Path, scanner) -> None:
    from imgcheck.decode import MemoryBudget, decode, decode_cost
    from imgcheck.inputs import InputItem

    for i in range(4):
        _noise(400, 300, i).save(tmp_path / f"{i}.png")
    with Image.open(tmp_path / "0.png") as im:
        one = decode_cost(im)
    scanner.budget = MemoryBudget(limit=one)  # room for exactly one of them at a time
    results = list(scanner.run([InputItem(str(tmp_path / f"{i}.png")) for i in range(4)]))
    assert [r.status.value for r in results] == ["ok"] * 4
    assert scanner.budget.peak == one and scanner.budget.used == 0
    tiny = MemoryBudget(limit=1)  # an image bigger than the whole budget still decodes, alone
    assert decode(tmp_path / "0.png", budget=tiny).width == 400 and tiny.used == 0
