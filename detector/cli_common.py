"""The CLI contract every imgcheck command follows (scan, colorize, evaluate, train, export).

- `run_app(app, args)`: runs a Typer app the way the console script does, and turns what click
  would print in its own style into ours: a usage error is one `imgcheck CMD: error: ...` line and
  exit 2, Ctrl-C while parsing exits 130, a closed stdout (`| head`) exits quietly.
- `command_errors(command)`: wraps each command's whole body. Ctrl-C exits 130 with one line
  (`imgcheck CMD: interrupted`), and SIGTERM / SIGHUP are turned into the same interrupt
  (`Terminated`, exit 143 / 129), so every `finally` and the atomic writer's cleanup run and no
  temporary file is left; a `ModelError` becomes its message and exit 2; a closed stdout exits
  quietly (`OK`); any other exception one `internal error` line and exit 2, or its full
  traceback (still exit 2, from `run_app`) when IMGCHECK_DEBUG is set.
- `fail(command, message)`: the one-line `imgcheck CMD: error: ...` on stderr; returns the
  `typer.Exit(2)` to raise. `warn(command, message)`: `imgcheck CMD: warning: ...`. Both pass
  the message through `terminal.printable`: a file name in it can neither drive the terminal
  (ESC sequences) nor forge a second line.
- `require_extra(command, extra, modules)`: exit 2 with the one install-the-extra line when an
  optional dependency is missing.
- `pixel_limit(max_pixels)`: `--max-pixels` as the decoders' limit, with Pillow's own limit and
  warning set to match (PIL is imported only when it is called).

Exit codes and messages: `imgcheck.errors`. Cheap to import (typer, os, contextlib and the
import-light session module): the command modules import it at top level and `imgcheck --help`
must not load numpy, Pillow or onnxruntime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import typer

from imgcheck.errors import DEBUG_VARIABLE, ERROR, INTERRUPTED, OK, first_line, install_hint
from imgcheck.session import ModelError
from imgcheck.terminal import printable


def fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"imgcheck {command}: error: {printable(message)}", err=True)
    return typer.Exit(ERROR)


def require_extra(command: str, extra: str, modules: tuple[str, ...]) -> None:
    """Exit 2 with `imgcheck CMD: error: needs ... (the EXTRA extra): pip install ...` unless
    every module in `modules` imports (they are imported: the command needs them next)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise fail(command, install_hint(extra)) from None


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
    return getattr(interrupt, "exit_code", INTERRUPTED)


def debug() -> bool:
    """IMGCHECK_DEBUG is set: errors keep their full traceback."""
    return bool(os.environ.get(DEBUG_VARIABLE))


def internal_error(exc: BaseException) -> str:
    """`internal error: Type: first line` (the rest of the message goes only to the traceback)."""
    what = type(exc).__name__ + (f": {first_line(exc)}" if str(exc).strip() else "")
    return f"internal error: {what} ({DEBUG_VARIABLE}=1 shows the traceback)"


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail again after
    the reader went away (`| head`)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass


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
    `internal_error(exc)`. With IMGCHECK_DEBUG set they propagate with their traceback. A
    closed stdout exits 0 quietly (a command that knows better, like scan, catches it first)."""
    try:
        with signals_as_interrupt():
            yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        typer.echo(f"imgcheck {command}: {interrupted}", err=True)
        raise typer.Exit(exit_code_of(exc)) from None
    except BrokenPipeError:  # the reader of stdout went away (`| head`): not an error
        silence_stdout()
        raise typer.Exit(OK) from None
    except Exception as exc:
        if debug():
            raise
        message = None
        if isinstance(exc, ModelError):
            message = str(exc)
        elif describe is not None:
            message = describe(exc)
        raise fail(command, internal_error(exc) if message is None else message) from None


def several_values(*names: str) -> type:
    """A Typer command class whose options `names` take several values after one flag, so a
    shell glob works unquoted: `--real a.jpg b.jpg --fake c/` = `--real a.jpg --real b.jpg
    --fake c/` (click options take one value each). Values run up to the next `-`-led token;
    only for commands with no positional arguments, where no value could be one."""
    from typer.core import TyperCommand

    flags = frozenset(names)

    class SeveralValues(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            spread: list[str] = []
            current: str | None = None
            for arg in args:
                if arg.startswith("-"):
                    flag = arg.split("=", 1)[0]
                    current = flag if flag in flags else None
                    spread.append(arg)
                elif current is not None and spread[-1] != current:
                    spread += [current, arg]
                else:
                    spread.append(arg)
            return super().parse_args(ctx, spread)

    return SeveralValues


# -- options that scan and colorize share: declared once, so they read and behave the same --


def recursive_option() -> Any:
    return typer.Option(True, "--recursive/--no-recursive", help="Walk sub-folders of folders.")


def include_option() -> Any:
    return typer.Option(
        [],
        "--include",
        metavar="GLOB",
        help="Only files matching this glob (name, or relative path if it holds /). Repeatable.",
    )


def exclude_option() -> Any:
    return typer.Option(
        [],
        "--exclude",
        metavar="GLOB",
        help="Skip files and folders matching this glob. Repeatable.",
    )


def max_pixels_option() -> Any:
    return typer.Option(
        0,
        "--max-pixels",
        min=0,
        help="Refuse images larger than this (decompression bombs). 0: Pillow's limit, ~179 MP.",
        show_default=False,
    )


def _click_exceptions() -> Any:
    """The exceptions of the click that Typer runs on: its vendored copy (Typer >= 0.26), else
    click's own."""
    try:
        from typer._click import exceptions  # type: ignore[import-not-found]
    except ImportError:
        from click import exceptions
    return exceptions


def run_app(app: typer.Typer, args: list[str] | None = None, *, prog_name: str = "imgcheck") -> int:
    """Run `app` as the console script does and return the exit code (see the module doc).

    click's own `main` would print usage errors in its style, exit 1 on a closed pipe and
    swallow a debug traceback's exit code: this is that loop, with our contract.
    """
    import traceback

    errors = _click_exceptions()
    no_args = getattr(errors, "NoArgsIsHelpError", ())  # click >= 8.2
    command = typer.main.get_command(app)
    argv = sys.argv[1:] if args is None else list(args)
    try:
        with command.make_context(prog_name, argv) as ctx:
            command.invoke(ctx)
        return OK
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):  # Rich's own handler (help | head)
            return OK
        raise
    except no_args as exc:  # bare `imgcheck`: the help, exit 2
        exc.show()
        return ERROR
    except errors.ClickException as exc:
        where = getattr(getattr(exc, "ctx", None), "command_path", None) or prog_name
        hint = f" (see '{where} -h')" if isinstance(exc, errors.UsageError) else ""
        message = printable(exc.format_message())
        typer.echo(f"{where}: error: {message}{hint}", err=True)
        return ERROR
    except (KeyboardInterrupt, typer.Abort):
        typer.echo(f"{prog_name}: interrupted", err=True)
        return INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return OK
    except Exception as exc:  # only with IMGCHECK_DEBUG, or a bug outside command_errors
        if debug():
            traceback.print_exc()
        else:
            typer.echo(f"{prog_name}: error: {internal_error(exc)}", err=True)
        return ERROR
