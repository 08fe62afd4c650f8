"""`python -m imgcheck.trainer`: the same options as `imgcheck train`, and the torchrun entry.

torchrun --nproc_per_node 2 -m imgcheck.trainer --data DIR --out runs/NAME

Run through `cli_common.run_app`, so errors and exit codes follow the one CLI contract.
"""

from __future__ import annotations

import sys

import typer

from imgcheck.cli import CONTEXT_SETTINGS
from imgcheck.cli_common import run_app
from imgcheck.trainer.cli import train_command


def main() -> None:
    app = typer.Typer(
        add_completion=False, pretty_exceptions_enable=False, context_settings=CONTEXT_SETTINGS
    )
    app.command()(train_command)
    sys.exit(run_app(app, prog_name="imgcheck train"))


if __name__ == "__main__":
    main()
