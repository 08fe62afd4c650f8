"""`python -m imgcheck.trainer`: the same options as `imgcheck train`, and the torchrun entry.

torchrun --nproc_per_node 2 -m imgcheck.trainer --data DIR --out runs/NAME
"""

from __future__ import annotations

import typer

from imgcheck.trainer.cli import train_command


def main() -> None:
    typer.run(train_command)


if __name__ == "__main__":
    main()
