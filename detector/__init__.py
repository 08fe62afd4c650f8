"""imgcheck: find AI-colorized images, and colorize grayscale photos.

The package root stays import-light on purpose: `imgcheck --help` and `import imgcheck`
must not pull in onnxruntime or torch. The public API is re-exported lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "scan": "imgcheck.scanning",
    "colorize": "imgcheck.colorizing",
}

__all__ = ["__version__", "colorize", "scan"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imgcheck' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
