"""`manifest.json`: what the runtime reads to find, verify and configure the exported models."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from imgcheck.models import MANIFEST, sha256_file


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, tuples -> lists, numpy/torch scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):
        try:
            return clean(value.item())
        except (ValueError, RuntimeError):
            pass
    return str(value)


def file_entry(folder: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {"file": name, "sha256": sha256_file(folder / name), **extra}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(clean(manifest), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
