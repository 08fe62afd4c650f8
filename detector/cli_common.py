"""What the runtime commands (`scan`, `colorize`, `evaluate`) say and how they exit on errors.

- `fail(command, message)`: the one-line `imgcheck CMD: error: ...` on stderr; returns the
  `typer.Exit(2)` to raise (exit 2 = usage, model or internal error, docs/ARCHITECTURE.md).
- `warn(command, message)`: `imgcheck CMD: warning: ...` on stderr (device/provider fallbacks).
  Both pass the message through `terminal.printable`: a file name in it can neither drive the
  terminal (ESC sequences) nor forge a second line.
- `pixel_limit(max_pixels)`: `--max-pixels` as the decoders' limit, with Pillow's own
  limit and warning set to match (PIL is imported only when it is called).
- `command_errors(command, ...)`: wraps a command's body. Ctrl-C exits 130 with one line, and
  SIGTERM / SIGHUP are turned into the same interrupt (`Terminated`, exit 143 / 129), so every
  `finally` and the atomic writer's cleanup run and no temporary file is left; a `ModelError`
  becomes its message and exit 2; any other exception one `internal error` line and exit 2, or
  its full traceback when IMGCHECK_DEBUG is set.

Cheap to import (typer, os, contextlib and the import-light session module): the command
modules import it at top level and `imgcheck --help` must not load numpy, Pillow or onnxruntime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

import typer

from imgcheck.session import ModelError
from imgcheck.terminal import printable


def fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"imgcheck {command}: error: {printable(message)}", err=True)
    return typer.Exit(2)


def warn(command: str, message: str) -> None:
    typer.echo(f"imgcheck {command}: warning: {printable(message)}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Terminated` in the main thread for the block (elsewhere a
    no-op: signal handlers can only be set from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    old = {n: signal.signal(getattr(signal, n), _raise_terminated) for n in names}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(getattr(signal, n), handler)


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for a signal N turned into `Terminated`."""
    return getattr(interrupt, "exit_code", 130)


def internal_error(exc: BaseException) -> str:
    """`internal error: Type: first line` (the rest of the message goes only to the traceback)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"internal error: {type(exc).__name__}: {first} (IMGCHECK_DEBUG=1 shows the traceback)"


def pixel_limit(max_pixels: int) -> int:
    """The pixel limit for `--max-pixels` (0: `decode.DEFAULT_MAX_PIXELS`, Pillow's hard limit).

    The decoders enforce it with a clear error row, so Pillow's DecompressionBombWarning below
    its hard limit is noise, and its hard limit (2 x MAX_IMAGE_PIXELS) must not undercut a larger
    --max-pixels. Both are process-wide Pillow settings: only a command (which owns the
    process) calls this.
    """
    import warnings

    from PIL import Image

    from imgcheck.decode import DEFAULT_MAX_PIXELS

    limit = max_pixels or DEFAULT_MAX_PIXELS
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    if Image.MAX_IMAGE_PIXELS is not None and limit > 2 * Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit // 2 + 1
    return limit


@contextlib.contextmanager
def command_errors(
    command: str,
    *,
    interrupted: str = "interrupted",
    describe: Callable[[Exception], str | None] | None = None,
) -> Iterator[None]:
    """Turn what escapes the block into the command's exit: `typer.Exit` passes through,
    KeyboardInterrupt prints `imgcheck CMD: <interrupted>` and exits 130 (SIGTERM 143, SIGHUP
    129: see `signals_as_interrupt`, active for the block), other exceptions exit 2 with one
    line: a ModelError's message, else `describe(exc)` if it returns one, else
    `internal_error(exc)`. With IMGCHECK_DEBUG set they propagate with their traceback."""
    try:
        with signals_as_interrupt():
            yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        typer.echo(f"imgcheck {command}: {interrupted}", err=True)
        raise typer.Exit(exit_code_of(exc)) from None
    except Exception as exc:
        if os.environ.get("IMGCHECK_DEBUG"):
            raise
        message = None
        if isinstance(exc, ModelError):
            message = str(exc)
        elif describe is not None:
            message = describe(exc)
        raise fail(command, internal_error(exc) if message is None else message) from None
