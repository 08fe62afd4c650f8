"""`imgcheck train`: the command-line face of `trainer.train.train`.

Imports only typer, pathlib, enum and the torch-free `TrainConfig` at module level, so
`imgcheck --help` stays fast and works without the training extra; torch comes in the body.

The options are not written here: each `TrainConfig` field declares its own (default, help,
panel: `trainer.config.option`), and `_options()` turns the fields into the Typer parameters
of `train_command`. A new setting is one field in `TrainConfig`.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import MISSING, fields
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from imgcheck.cli_common import command_errors, fail, require_extra
from imgcheck.trainer.config import TrainConfig


def _option(f: Any, annotation: Any) -> inspect.Parameter:
    """One `TrainConfig` field as a keyword parameter whose default is its `typer.Option`."""
    meta = dict(f.metadata)
    required = meta.pop("required", False)
    help_text, panel = meta.pop("help", ""), meta.pop("panel", "")
    flags = meta.pop("flags", ())
    default = ... if required else f.default
    if meta.pop("path", False):
        annotation = Path
    choices = meta.pop("choices", None)
    if choices:
        annotation = Enum(f"{f.name.title()}Choice", {c: c for c in choices}, type=str)
        default = default if default is ... else annotation(default)
    info = typer.Option(
        default,
        *flags,
        help=help_text,
        rich_help_panel=panel or None,
        show_default=not required,
        **meta,
    )
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation
    )


def _options() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(TrainConfig)
    assert all(f.default is not MISSING for f in fields(TrainConfig))
    return [_option(f, hints[f.name]) for f in fields(TrainConfig)]


def train_command(**options: Any) -> None:
    """Train the colorizer and the detector on a folder of colour photos (needs torch).

    Multi-GPU: torchrun --nproc_per_node N -m imgcheck.trainer --data DIR --out runs/NAME
    """
    values = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    values.update(data=str(values["data"]), out=str(values["out"]))
    cfg = TrainConfig.from_dict(values)
    resume_hint = f"interrupted; continue with: --out {cfg.out} --resume"
    with command_errors("train", interrupted=resume_hint, describe=lambda exc: _describe(exc, cfg)):
        require_extra("train", "train", ("torch",))
        from imgcheck.trainer.train import train

        train(cfg)


def _describe(exc: Exception, cfg: TrainConfig) -> str | None:
    from imgcheck.cli_common import internal_error
    from imgcheck.trainer.config import TrainError

    if isinstance(exc, TrainError):
        return str(exc)
    if cfg.resume:
        return f"cannot resume {cfg.out} (a damaged run folder?): {internal_error(exc)}"
    return None


_PARAMS = _options()
train_command.__signature__ = inspect.Signature(_PARAMS)  # type: ignore[attr-defined]
train_command.__annotations__ = {p.name: p.annotation for p in _PARAMS} | {"return": None}

__all__ = ["fail", "train_command"]
