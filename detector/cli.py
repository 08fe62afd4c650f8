"""The `imgcheck` command line: a thin Typer root that registers one module per command.

Each command module imports only cheap things at module level (typer, pathlib, enums) and
pulls heavy dependencies (onnxruntime, torch, numpy) inside the command body, so that
`imgcheck --help` stays fast and works even where the training extra is not installed.
Every command follows one contract (`imgcheck.cli_common`: error line, exit codes, Ctrl-C,
IMGCHECK_DEBUG); `main` runs the app through `cli_common.run_app`, which applies it to what
click itself reports (usage errors).
"""

from __future__ import annotations

import sys

import typer

from imgcheck import __version__
from imgcheck.cli_common import run_app

# Inherited by every sub-command's context: `imgcheck scan -h` works too.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="imgcheck",
    help="Find AI-colorized images in image folders, and colorize grayscale photos.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgcheck {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Find AI-colorized images in image folders, and colorize grayscale photos."""


def _register() -> None:
    # Imported here (not at module top) only to keep the registration list in one place.
    from imgcheck import cli_colorize, cli_evaluate, cli_scan
    from imgcheck.export import cli as cli_export
    from imgcheck.trainer import cli as cli_train

    app.command("scan")(cli_scan.scan_command)
    app.command("colorize")(cli_colorize.colorize_command)
    app.command("evaluate", cls=cli_evaluate.COMMAND_CLASS)(cli_evaluate.evaluate_command)
    app.command("train")(cli_train.train_command)
    app.command("export")(cli_export.export_command)


_register()


def main(args: list[str] | None = None) -> None:
    """Console-script entry point (`python -m imgcheck` too)."""
    sys.exit(run_app(app, args))
