"""The one error type of `imgcheck export`: the CLI prints its message and exits 2."""

from __future__ import annotations


class ExportError(RuntimeError):
    """A bad run folder, an unreadable checkpoint, an unwritable output, or a failed parity check."""


class ParityError(ExportError):
    """The ONNX graph does not reproduce PyTorch within the stated bound: nothing is written."""
