"""What every imgcheck command shares about failing: exit codes, one-line messages, install hints.

Standard library only: the runtime, the trainer and export import it, and `imgcheck --help`
must stay cheap.

- Exit codes (like ruff), the same for every command: `OK` 0, `FINDINGS` 1 (scan flagged an
  image; colorize could not do an input), `ERROR` 2 (usage, model, input or internal error),
  `INTERRUPTED` 130 (Ctrl-C; SIGTERM/SIGHUP give 128 + the signal).
- `first_line(exc)`: an exception as one line for a message (never empty, never IndexError).
- `install_hint(extra)`: the one "install the extra" sentence, with the command to run.
"""

from __future__ import annotations

OK = 0
FINDINGS = 1
ERROR = 2
INTERRUPTED = 130

DEBUG_VARIABLE = "IMGCHECK_DEBUG"  # set (to anything) for the full traceback of an error

DISTRIBUTION = "imgcheck-colorize"  # what pip installs; the command and import are `imgcheck`
TORCH_CPU = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
_EXTRAS = {
    "train": ("PyTorch and onnx", f"{TORCH_CPU} && pip install '{DISTRIBUTION}[train]'"),
    "cpu": ("an ONNX runtime", f"pip install '{DISTRIBUTION}[cpu]' (or [gpu] for NVIDIA GPUs)"),
}


def first_line(exc: BaseException) -> str:
    """The first non-empty line of `exc`'s message, else its type name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def install_hint(extra: str) -> str:
    """`needs PyTorch and onnx (the train extra): pip install ...` for a message."""
    what, command = _EXTRAS[extra]
    return f"needs {what} (the {extra} extra): {command}"


__all__ = [
    "DEBUG_VARIABLE",
    "ERROR",
    "FINDINGS",
    "INTERRUPTED",
    "OK",
    "first_line",
    "install_hint",
]
