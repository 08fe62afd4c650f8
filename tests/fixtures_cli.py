"""Run the real `imgcheck` command line in-process: the registered root app (`imgcheck.cli.app`)
through `cli_common.run_app`, exactly what the console script runs, with stdout and stderr
captured apart (Typer's CliRunner isolation)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from typer.testing import CliRunner


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(
    args: Sequence[object],
    *,
    input: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Ran:
    from imgcheck import cli
    from imgcheck.cli_common import run_app

    with CliRunner().isolation(input=input, env=env) as streams:
        try:
            code = run_app(cli.app, [str(a) for a in args])
        except SystemExit as exc:  # a command may sys.exit itself
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Ran(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
