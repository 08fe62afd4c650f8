"""What the runtime commands (`scan`, `colorize`, `evaluate`) say and how they exit on errors.

- `fail(command, message)`: the one-line `imgcheck CMD: error: ...` on stderr; returns the
  `typer.Exit(2)` to raise (exit 2 = usage, model or internal error, docs/ARCHITECTURE.md).
- `warn(command, message)`: `imgcheck CMD: warning: ...` on stderr (device/provider fallbacks).
- `pixel_limit(max_pixels)`: `--max-pixels` as the decoders' limit, with Pillow's own
  limit and warning set to match (PIL is imported only when it is called).
- `command_errors(command, ...)`: wraps a command's body. Ctrl-C exits 130 with one line; a
  `ModelError` becomes its message and exit 2; any other exception one `internal error` line
  and exit 2, or its full traceback when IMGCHECK_DEBUG is set.

Cheap to import (typer, os, contextlib and the import-light session module): the command
modules import it at top level and `imgcheck --help` must not load numpy, Pillow or onnxruntime.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import typer

from imgcheck.detector.session import ModelError


def fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"imgcheck {command}: error: {message}", err=True)
    return typer.Exit(2)


def warn(command: str, message: str) -> None:
    typer.echo(f"imgcheck {command}: warning: {message}", err=True)


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

    from imgcheck.detector.decode import DEFAULT_MAX_PIXELS

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
    KeyboardInterrupt prints `imgcheck CMD: <interrupted>` and exits 130, other exceptions exit
    2 with one line: a ModelError's message, else `describe(exc)` if it returns one, else
    `internal_error(exc)`. With IMGCHECK_DEBUG set they propagate with their traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        typer.echo(f"imgcheck {command}: {interrupted}", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("IMGCHECK_DEBUG"):
            raise
        message = None
        if isinstance(exc, ModelError):
            message = str(exc)
        elif describe is not None:
            message = describe(exc)
        raise fail(command, internal_error(exc) if message is None else message) from None
