"""The run folder (docs/ARCHITECTURE.md): paths, atomic writes, metrics log, resume state.

Every file a later step reads (checkpoints, config.json, split.json, final.pt) is written to a
temporary name, fsynced and `os.replace`d, so a run killed at any instant (kill -9, a lost
spot instance) leaves either the old file or the new one, never a torn one. `--resume` then
restarts from `checkpoints/last.pt`, which holds everything the next step depends on.
"""

from __future__ import annotations

import json
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imgcheck
from imgcheck.atomic import atomic_write
from imgcheck.errors import first_line
from imgcheck.trainer.config import TrainError


class RunDir:
    """Paths of one run folder; creating it is separate so that non-writing ranks never touch it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.metrics = self.root / "metrics.jsonl"
        self.split = self.root / "split.json"
        self.checkpoints = self.root / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.final = self.checkpoints / "final.pt"
        self.samples = self.root / "samples"

    def create(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self.samples.mkdir(parents=True, exist_ok=True)

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:03d}.png"


def _replace_atomically(path: Path, write: Any) -> None:
    """Write through `write(file)` to a temporary sibling, fsync, then rename over `path`
    (the runtime's shared writer, `imgcheck.atomic`); creates the folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


def save_torch(obj: Any, path: Path) -> None:
    _replace_atomically(path, lambda f: torch.save(obj, f))


def save_json(obj: Any, path: Path) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    _replace_atomically(path, lambda f: f.write(text.encode()))


def load_json(path: Path) -> Any:
    """Read a run-folder JSON file; a missing, unreadable or broken one is a `TrainError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
        raise TrainError(f"cannot read {path}: {reason}") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The resume checkpoint; a truncated, foreign or hostile file is a `TrainError`.

    Checkpoints hold only tensors and plain Python values, so the safe loader reads them
    (`weights_only=True` runs no pickled code: a hostile last.pt cannot execute anything)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by the safe loader, I/O error
        raise TrainError(
            f"cannot resume from {path}: not a readable checkpoint ({first_line(exc)})"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise TrainError(f"cannot resume from {path}: not an imgcheck training checkpoint")
    return state


def resume_state(
    position: tuple[int, int, int] | list[int],
    step: int,
    epoch_sums: dict[str, Any],
    G: dict[str, torch.Tensor],
    D: dict[str, torch.Tensor],
    opts: dict[str, torch.optim.Optimizer],
    snapshots: dict[str, Any],
    metrics_offset: int,
    config: dict[str, Any],
) -> dict[str, Any]:
    """What `checkpoints/last.pt` holds, in one place: the training loop's checkpoints and
    `trainer.rebuild`'s hand-made one share this format (`G`, `D`: CPU state dicts)."""
    return {
        "position": list(position),
        "step": step,
        "epoch_sums": {k: float(v) for k, v in epoch_sums.items()},
        "G": G,
        "D": D,
        "opts": {k: o.state_dict() for k, o in opts.items()},
        "snapshots": snapshots,
        "rng": rng_state(),
        "metrics_offset": metrics_offset,
        "config": config,
    }


class MetricsLog:
    """metrics.jsonl: one JSON object per line, flushed at once so `tail -f` follows the run.

    The byte offset goes into each checkpoint; resuming truncates the file back to it, so the
    lines logged after the checkpoint (and lost with the crash) are not duplicated.
    """

    def __init__(self, path: Path, truncate_to: int | None = None) -> None:
        self.path = path
        if truncate_to is not None and path.exists():
            with open(path, "r+b") as f:
                f.truncate(truncate_to)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def log(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, allow_nan=True) + "\n")
        self._file.flush()

    def offset(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def rng_state() -> dict[str, Any]:
    """Global RNG states as plain values (numpy's key array as a list: loadable weights_only)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, key.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def versions() -> dict[str, str]:
    """Saved with the config: what produced this run."""
    import PIL

    return {
        "imgcheck": imgcheck.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }
