"""The one home of the runtime's defaults and of `ScanOptions`, what one scan is asked to do.

Standard library only, so the command modules import it at top level and `imgcheck --help`
stays cheap.

- `DEFAULT_BATCH_SIZE`, `MAX_WORKERS`, `default_workers(kind)`: every batch-size and thread
  default of scan, evaluate and colorize (their CLI options and their Python APIs read these).
- `ScanOptions`: built once by `imgcheck scan` from its parsed parameters
  (`ScanOptions.from_params(ctx.params)`), then completed by the settings in force (config
  file, environment: `with_settings`), and passed on unchanged: the CLI body reads it and
  `Scanner.from_options` builds the detector from it. A new scan option is one field here, one
  Typer parameter of the same name in `cli_scan.scan_command`, and (if a config file may set
  it) one `imgcheck.config.KEYS` entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

DEFAULT_BATCH_SIZE = 8  # images per model call, scan and colorize alike
MAX_WORKERS = 64  # --workers upper bound: more threads only cost memory (10000: 2 GB RSS)
_WORKER_CAPS = {"scan": 8, "colorize": 4}


def default_workers(kind: str = "scan") -> int:
    """Threads when `--workers 0`: one per core, capped at 8 for scan's decoders (more only add
    contention) and at 4 for colorize's decode/encode threads (a few keep the model busy; more
    only add memory)."""
    return max(1, min(_WORKER_CAPS[kind], os.cpu_count() or 1))


# `ScanOptions` fields that hold paths: the config layer and Typer give str or Path, the scan
# always reads Path (or None).
_PATH_FIELDS = ("output", "model", "baseline", "write_baseline", "config", "cache")


@dataclass
class ScanOptions:
    """Everything `imgcheck scan` was asked to do; field names = `scan_command`'s parameters."""

    paths: list[str] = field(default_factory=list)
    report: str | None = None  # a ReportFormat value; None: guessed (see `cli_scan`)
    output: Path | None = None
    force: bool = False
    recursive: bool = True
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    model: Path | None = None
    device: str = "auto"  # a session.Device value
    variant: str = "fp32"  # a models.Variant value
    threshold: float | None = None
    cascade: bool = True  # imgcheck.cascade, where the model's manifest carries one
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = 0  # 0: default_workers("scan")
    max_pixels: int = 0  # 0: Pillow's limit (cli_common.pixel_limit)
    min_side: int = 0  # 0: the detector's tile (scanning.Scanner.min_side)
    view: str | None = None  # measurement only: override the model's view
    fail_on_error: bool = False
    fail_on_empty: bool = False
    exit_zero: bool = False
    baseline: Path | None = None
    write_baseline: Path | None = None
    cache: Path | None = None  # imgcheck.cache: rows of images scanned before, by content
    config: Path | None = None
    show_settings: bool = False
    quiet: bool = False
    engine: str = "local"  # "local" (this process) or "ray" (imgcheck.engine_ray)
    # --engine ray: the cluster (None: RAY_ADDRESS, else a local one)
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        self.paths = [str(p) for p in self.paths or []]
        self.include = list(self.include or [])
        self.exclude = list(self.exclude or [])

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ScanOptions:
        """From click's parsed parameters (`ctx.params`): enums become their values, parameters
        that are not options (none today) are ignored."""
        names = {f.name for f in fields(cls)}
        values = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in params.items()
            if name in names
        }
        return cls(**values)

    def settings_input(self, params: tuple[str, ...]) -> dict[str, Any]:
        """The values of `params` as `imgcheck.config.resolve` takes them (paths as str)."""
        out: dict[str, Any] = {}
        for name in params:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Path) else value
        return out

    def with_settings(self, values: Mapping[str, Any]) -> ScanOptions:
        """A copy with the settings in force (`imgcheck.config.Settings.values`)."""
        return replace(self, **dict(values))


__all__ = ["DEFAULT_BATCH_SIZE", "MAX_WORKERS", "ScanOptions", "default_workers"]
