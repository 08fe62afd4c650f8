"""The `imgcheck` command line: a thin Typer root that registers one module per command.

Each command module imports only cheap things at module level (typer, pathlib, enums) and
pulls heavy dependencies (onnxruntime, torch, numpy) inside the command body, so that
`imgcheck --help` stays fast and works even where the training extra is not installed.
"""

from __future__ import annotations

import typer

from imgcheck import __version__

app = typer.Typer(
    name="imgcheck",
    help="Find AI-colorized images in image folders, and colorize grayscale photos.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgcheck {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
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
    app.command("evaluate")(cli_evaluate.evaluate_command)
    app.command("train")(cli_train.train_command)
    app.command("export")(cli_export.export_command)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
