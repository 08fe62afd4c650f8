"""ONNX Runtime sessions: provider choice, clear errors, and what actually ran.

onnxruntime is imported inside functions only, so the CLI's `--help` never pays for it.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from imgcheck.errors import first_line, install_hint


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or not an imgcheck model: the CLI exits 2 with this message."""


class RuntimeMissing(ModelError):
    """No ONNX runtime is installed (the cpu/gpu extra was left out)."""


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeMissing(install_hint("cpu")) from exc
    return ort


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def wants_cuda(device: Device) -> bool:
    """Whether a session for `device` will try CUDA first (it may still fall back to CPU)."""
    return device is Device.CUDA or (
        device is Device.AUTO and "CUDAExecutionProvider" in available_providers()
    )


def available_providers() -> list[str]:
    return list(_ort().get_available_providers())


def _providers_for(device: Device) -> list[str]:
    available = available_providers()
    if device is Device.CPU:
        return ["CPUExecutionProvider"]
    if device is Device.CUDA:
        if "CUDAExecutionProvider" not in available:
            raise ModelError(
                "--device cuda was asked for, but this onnxruntime has no CUDA provider "
                f"(available: {', '.join(available)}). Install imgcheck-colorize[gpu] on a machine "
                "with an NVIDIA GPU, or use --device cpu."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def create_session(
    model: Path | bytes,
    device: Device = Device.AUTO,
    threads: int | None = None,
    *,
    spin: bool = False,
) -> Any:
    """Open an InferenceSession; raise ModelError (never a raw ORT traceback) on a bad file.

    `threads` caps intra-op threads (default: all cores). The provider that is really active
    is `active_provider(session)`: ORT silently falls back to CPU when CUDA fails to load.

    `spin=False` (default) stops idle intra-op threads from busy-waiting between operators.
    scan and colorize decode/encode in threads beside inference on the same cores, and
    spinning threads steal those cores: on 2 cores, scan ran ~10% faster without spinning
    (benchmarks/RESULTS.md). Pass `spin=True` for a session that runs alone.
    """
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, sess_options=opts, providers=_providers_for(device))
    except ModelError:
        raise
    except Exception as exc:
        name = "model bytes" if isinstance(model, bytes) else str(model)
        raise ModelError(f"cannot load model {name}: {first_line(exc)}") from exc


def active_provider(session: Any) -> str:
    """ "cuda" or "cpu": what the session will really run on."""
    return "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
