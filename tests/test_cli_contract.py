"""The one CLI contract, checked on every registered command of the real root app.

Every command (scan, colorize, evaluate, train, export) and the root follow one table: 0 ok,
1 findings, 2 usage/model/internal error, 130 Ctrl-C; one `imgcheck CMD: error: ...` line; the
traceback only with IMGCHECK_DEBUG; one "install the extra" line; `-h` and `-V`; a closed
stdout exits quietly. Each test runs `imgcheck.cli.app` through `cli_common.run_app` (what the
console script runs) or the installed entry point in a subprocess, never an app built here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fixtures_cli import run_cli
from PIL import Image

from imgcheck import cli, cli_common

COMMANDS = ("scan", "colorize", "evaluate", "train", "export")
RUNTIME = ("scan", "colorize", "evaluate")  # need onnxruntime (the cpu extra); the rest torch
ENTRY = [sys.executable, "-m", "imgcheck"]  # the same main() as the console script


pytestmark = pytest.mark.usefixtures("no_imgcheck_env")


def _args(command: str, tmp_path: Path) -> list[object]:
    """Arguments that parse, so the command's own body runs."""
    photo, other = tmp_path / "photo.png", tmp_path / "other.png"
    if not photo.exists():
        Image.new("RGB", (64, 48), (180, 60, 40)).save(photo)
        Image.new("RGB", (64, 48), (40, 60, 180)).save(other)
    return {
        "scan": [photo],
        "colorize": [photo, "-o", tmp_path / "out"],
        "evaluate": ["--real", photo, "--fake", other],
        "train": ["--data", tmp_path, "--out", tmp_path / "run"],
        "export": [tmp_path / "run", "--out", tmp_path / "models"],
    }[command]


def _body_raises(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make the command's body fail at its first step: every command runs its body inside
    `command_errors`, which enters `signals_as_interrupt` first."""

    @contextlib.contextmanager
    def failing() -> Iterator[None]:
        raise exc
        yield  # pragma: no cover

    monkeypatch.setattr(cli_common, "signals_as_interrupt", failing)


def _one_error_line(ran, command: str) -> str:
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith(f"imgcheck {command}: error: "), ran.stderr
    assert "Traceback" not in ran.output and "╭" not in ran.output
    return lines[0]


def test_every_registered_command_is_under_contract() -> None:
    assert set(typer.main.get_command(cli.app).commands) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_short_and_long(command: str) -> None:
    for flag in ("-h", "--help"):
        ran = run_cli([command, flag])
        assert ran.exit_code == 0, ran.output
        assert f"Usage: imgcheck {command}" in ran.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_as_plain_metavars(command: str) -> None:
    """What Typer >= 0.27 prints (pyproject pins below it): type labels and brace usage."""
    text = run_cli([command, "--help"], env={"COLUMNS": "200"}).stdout
    for bad in ("<bool>", "<list[", "list[str]", "<str>", "{", "...]..."):
        assert bad not in text, (bad, text)


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_error_is_one_line_exit_2(command: str, tmp_path: Path) -> None:
    ran = run_cli([command, *_args(command, tmp_path), "--no-such-flag"])
    assert ran.exit_code == 2
    line = _one_error_line(ran, command)
    assert "--no-such-flag" in line and f"imgcheck {command} -h" in line
    assert ran.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_exits_130_with_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _body_raises(monkeypatch, KeyboardInterrupt())
    ran = run_cli([command, *_args(command, tmp_path)])
    assert ran.exit_code == 130
    assert ran.stderr.splitlines()[0].startswith(f"imgcheck {command}: interrupted")
    assert "Traceback" not in ran.output


@pytest.mark.parametrize("command", COMMANDS)
def test_internal_error_is_one_line_and_debug_shows_the_traceback(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _body_raises(monkeypatch, RuntimeError("boom\nsecond line"))
    ran = run_cli([command, *_args(command, tmp_path)])
    assert ran.exit_code == 2
    line = _one_error_line(ran, command)
    assert line.endswith("internal error: RuntimeError: boom (IMGCHECK_DEBUG=1 shows the traceback)")

    ran = run_cli([command, *_args(command, tmp_path)], env={"IMGCHECK_DEBUG": "1"})
    assert ran.exit_code == 2  # the same table, with the whole traceback
    assert "Traceback" in ran.stderr and "RuntimeError: boom" in ran.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_exception_message_is_still_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _body_raises(monkeypatch, RuntimeError())
    ran = run_cli([command, *_args(command, tmp_path)])
    assert ran.exit_code == 2
    assert "internal error: RuntimeError (" in _one_error_line(ran, command)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_extra_is_one_install_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing, extra = ("onnxruntime", "cpu") if command in RUNTIME else ("torch", "train")
    monkeypatch.setitem(sys.modules, missing, None)  # `import onnxruntime` now fails
    ran = run_cli([command, *_args(command, tmp_path)])
    assert ran.exit_code == 2
    line = _one_error_line(ran, command)
    assert f"(the {extra} extra): " in line and f"pip install 'imgcheck-colorize[{extra}]'" in line
    if extra == "train":  # the CPU wheel index, not a multi-GB CUDA build
        assert "--index-url https://download.pytorch.org/whl/cpu" in line


def test_root_version_help_and_unknown_command() -> None:
    for flag in ("-V", "--version"):
        ran = run_cli([flag])
        assert ran.exit_code == 0 and ran.stdout.startswith("imgcheck ")
    ran = run_cli(["-h"])
    assert ran.exit_code == 0 and all(c in ran.stdout for c in COMMANDS)
    ran = run_cli([])
    assert ran.exit_code == 2 and "Usage: imgcheck" in ran.output
    ran = run_cli(["no-such-command"])
    assert ran.exit_code == 2
    assert ran.stderr.startswith("imgcheck: error: ") and len(ran.stderr.splitlines()) == 1


def test_exit_codes_are_one_table() -> None:
    from imgcheck import errors

    assert (errors.OK, errors.FINDINGS, errors.ERROR, errors.INTERRUPTED) == (0, 1, 2, 130)


def test_first_line_never_fails() -> None:
    from imgcheck.errors import first_line

    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("\n\n  second\nthird")) == "second"


# --- the entry point, for real (closed pipes and signals need a process) ------------------


def _closed_stdout(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run with a stdout whose reader is gone before the first byte (`| head -0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [*ENTRY, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write)


def test_a_closed_stdout_is_not_an_error(tmp_path: Path) -> None:
    photo = _args("scan", tmp_path)[0]
    done = _closed_stdout(["scan", str(photo), "-f", "csv"])
    assert done.returncode in (0, 1), done.stderr  # the exit table, never 2
    assert "error" not in done.stderr and "Traceback" not in done.stderr
    done = _closed_stdout(["scan", "-h"])
    assert done.returncode == 0 and done.stderr == ""


def test_sigint_exits_130(tmp_path: Path) -> None:
    """A real Ctrl-C: scan waits for paths on stdin, then gets SIGINT."""
    proc = subprocess.Popen(
        [*ENTRY, "scan", "-", "-f", "csv"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # imports and the model load; then it blocks reading stdin
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
