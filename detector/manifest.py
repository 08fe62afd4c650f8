"""Validating a model folder's `manifest.json` before any of it is trusted.

`models.resolve` finds and sha256-checks the files; this checks what the manifest *says*, so a
hostile or hand-edited manifest is a clear `ModelError` (exit 2) instead of a scan that can
never flag anything (threshold 5.0 or NaN: a CI gate that always passes), flags everything
(-1), crashes (`"abc"`) or reads a file outside the folder. The schema (docs/ARCHITECTURE.md):

- `imgcheck_manifest` is 1; each model entry (`detector`, `colorizer`, every `variants` entry)
  is an object with `file`, a plain relative name inside the folder (no absolute path, no
  `..`, no backslash), and `sha256`, 64 hex digits: a model without a checksum is refused;
- detector: `threshold` (when given) a finite number strictly between 0 and 1, `view` an object of
  integers (and `mode`, `aggregate` strings), `min_side` an integer >= 1;
- colorizer: `work_size` an integer >= 16;
- detector `cascade` (optional, `imgcheck.cascade`): `stages` of increasing integer `tiles` with
  thresholds strictly between 0 and 1, the `detector_threshold` and `view` it was calibrated for;
- `version`, `threshold_rule`: strings when present; `variants`: an object.

A bare `.onnx` given with `--model` has no manifest; its metadata threshold is range-checked the
same way (`check_info`). `resolve_checked` is what scan and colorize call.
"""

from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath
from typing import Any

from imgcheck.cascade import problems as cascade_problems
from imgcheck.models import DEFAULT_DIR, MANIFEST, ModelInfo, read_manifest, resolve
from imgcheck.session import ModelError

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _threshold_problem(value: Any) -> str | None:
    if not _number(value):
        return f"threshold must be a number, not {value!r}"
    if not math.isfinite(value) or not 0 < value < 1:
        return f"threshold must be strictly between 0 and 1, not {value!r}"
    return None


def _entry_problems(name: str, entry: Any, kind: str | None) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{name} must be an object"]
    problems = []
    file = entry.get("file")
    if not isinstance(file, str) or not file:
        problems.append(f"{name}.file must be a file name")
    else:
        rel = PurePosixPath(file)
        if rel.is_absolute() or "\\" in file or ".." in rel.parts or ":" in file:
            problems.append(f"{name}.file must be a plain name inside the model folder: {file!r}")
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        problems.append(f"{name}.sha256 is missing or not 64 hex digits (unverified model)")
    if "threshold" in entry:  # optional (scan then warns and uses 0.5); variants inherit it
        problem = _threshold_problem(entry["threshold"])
        if problem:
            problems.append(f"{name}.{problem}")
    if "view" in entry:
        view = entry["view"]
        if not isinstance(view, dict) or not all(
            isinstance(v, str) if k in ("mode", "aggregate") else _int(v) for k, v in view.items()
        ):
            problems.append(
                f"{name}.view must be an object of integers (and mode/aggregate strings)"
            )
    if kind == "detector" and "cascade" in entry:
        problems += cascade_problems(entry["cascade"])
    if "min_side" in entry and not (_int(entry["min_side"]) and entry["min_side"] >= 1):
        problems.append(f"{name}.min_side must be an integer >= 1")
    if kind == "colorizer" or "work_size" in entry:
        ws = entry.get("work_size")
        if not (_int(ws) and ws >= 16):
            problems.append(f"{name}.work_size must be an integer >= 16, not {ws!r}")
    for key in ("threshold_rule",):
        if key in entry and not isinstance(entry[key], str):
            problems.append(f"{name}.{key} must be a string")
    return problems


def manifest_problems(data: Any) -> list[str]:
    """Every way `data` (a parsed manifest.json) breaks the schema; empty if none."""
    if not isinstance(data, dict) or data.get("imgcheck_manifest") != 1:
        return ["not an imgcheck model manifest (imgcheck_manifest must be 1)"]
    problems = []
    for kind in ("detector", "colorizer"):
        if kind in data:
            problems += _entry_problems(kind, data[kind], kind)
    variants = data.get("variants", {})
    if not isinstance(variants, dict):
        problems.append("variants must be an object")
    else:
        for name, entry in variants.items():
            problems += _entry_problems(f"variants.{name}", entry, None)
    if "version" in data and not isinstance(data["version"], str):
        problems.append("version must be a string")
    return problems


def check_manifest(folder: Path) -> None:
    """Raise `ModelError` naming the first problems of `folder`'s manifest, if any."""
    problems = manifest_problems(read_manifest(folder))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ModelError(f"invalid {folder / MANIFEST}: {'; '.join(problems[:3])}{more}")


def check_info(info: ModelInfo) -> ModelInfo:
    """Range checks on what the runtime will use, whatever it came from (bare .onnx metadata)."""
    if info.kind == "detector" and info.threshold is not None:
        problem = _threshold_problem(info.threshold)
        if problem:
            raise ModelError(f"{info.path}: {problem}")
    work = info.work_size
    if info.kind == "colorizer" and work is not None and not (_int(work) and work >= 16):
        raise ModelError(f"{info.path}: work_size must be an integer >= 16")
    return info


def resolve_checked(kind: str, model: Path | None = None, variant: Any = None) -> ModelInfo:
    """`models.resolve` behind the schema check of the folder's manifest (see module doc)."""
    folder = DEFAULT_DIR if model is None else model
    if folder.is_dir():
        check_manifest(folder)
    return check_info(resolve(kind, model, variant))
