"""Measure a detector on labelled folders: real colour photos vs colorized images.

`imgcheck evaluate --real DIR --fake DIR` runs exactly the scan pipeline (same decoding, view,
batching and threshold rule, `score >= threshold` = colorized) over both folders and reports
`metrics.binary_report`: AUC, AP, accuracy on real and on fake at the threshold, HTER, and TPR at
1 % and 5 % FPR. So the numbers a user measures on their own data are the numbers `scan` would
give them, and match the model card's, which the trainer computes with the same metrics module.

Grayscale images (neither real colour nor colorized) and unreadable files are excluded from
the metrics and counted, per folder, so a folder full of errors cannot pass for a good score.
numpy + onnxruntime only; no torch.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgcheck.metrics import binary_report
from imgcheck.results import ScanResult, Status
from imgcheck.session import Device

__all__ = ["MAX_ERRORS_LISTED", "Evaluation", "evaluate", "score_folders"]

MAX_ERRORS_LISTED = 20  # error rows kept for the report; all of them are counted

PathArg = str | os.PathLike[str]


@dataclass
class ClassCounts:
    """How the images of one folder (one label) ended up."""

    ok: int = 0  # scored: these enter the metrics
    grayscale: int = 0
    error: int = 0
    too_small: int = 0  # below the scan's min side: not scored, like grayscale

    def to_dict(self) -> dict[str, int]:
        return {
            "ok": self.ok,
            "grayscale": self.grayscale,
            "too_small": self.too_small,
            "error": self.error,
        }


@dataclass
class Evaluation:
    """Everything `imgcheck evaluate` prints: metrics plus what they were computed on."""

    metrics: dict[str, Any]  # metrics.binary_report
    counts: dict[str, ClassCounts]  # "real" / "fake"
    threshold: float
    model: str
    provider: str
    seconds: float
    variant: str = "fp32"  # the detector build that was measured
    warnings: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # first MAX_ERRORS_LISTED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (nan -> None), the `--format json` contract."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return {
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "counts": {k: c.to_dict() for k, c in self.counts.items()},
            "threshold": self.threshold,
            "model": self.model,
            "provider": self.provider,
            "variant": self.variant,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


def _as_list(paths: Iterable[PathArg] | PathArg) -> list[PathArg]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def score_folders(
    scanner: Any, real: Iterable[PathArg] | PathArg, fake: Iterable[PathArg] | PathArg
) -> tuple[np.ndarray, np.ndarray, dict[str, ClassCounts], list[dict[str, str]]]:
    """Run a loaded `scan.Scanner` over both inputs -> (labels, scores, counts, first errors)."""
    from imgcheck.inputs import display_path, iter_inputs

    labels: list[int] = []
    scores: list[float] = []
    counts = {"real": ClassCounts(), "fake": ClassCounts()}
    errors: list[dict[str, str]] = []
    for name, label, paths in (("real", 0, real), ("fake", 1, fake)):
        result: ScanResult
        for result in scanner.run(iter_inputs(_as_list(paths))):
            count = counts[name]
            if result.status is Status.OK and result.score is not None:
                count.ok += 1
                labels.append(label)
                scores.append(float(result.score))
            elif result.status is Status.GRAYSCALE:
                count.grayscale += 1
            elif result.status is Status.TOO_SMALL:
                count.too_small += 1
            else:
                count.error += 1
                if len(errors) < MAX_ERRORS_LISTED:
                    errors.append(
                        {
                            "set": name,
                            "path": display_path(result.path),
                            "error": result.error or "unknown error",
                        }
                    )
    return np.asarray(labels, dtype=np.int64), np.asarray(scores), counts, errors


def evaluate(
    real: Iterable[PathArg] | PathArg,
    fake: Iterable[PathArg] | PathArg,
    *,
    model: PathArg | None = None,
    device: Device | str = "auto",
    threshold: float | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    variant: str | None = None,
) -> Evaluation:
    """Score real photos (label 0) and colorized images (label 1) and compute the metrics.

    `real`/`fake`: folders, files or globs, as `scan` takes them. `threshold=None` uses the
    model's calibrated threshold (like `scan`). Raises `ModelError` for model problems, before
    any image is read. `variant` ("int8", "fp16"; None or "fp32" = the calibrated model) measures
    one of the builds the model folder's manifest lists, against the fp32 threshold. A class with no scored image gives nan metrics and a note (see
    `binary_report`); the CLI turns that into exit 2.

    Uses `scan.Scanner` (what `imgcheck.scan()` wraps) so the model loads once for both
    folders and the threshold actually applied is known.
    """
    from imgcheck.scanning import DEFAULT_BATCH_SIZE, Scanner

    start = time.perf_counter()
    scanner = Scanner(
        model,
        device,
        batch_size=batch_size or DEFAULT_BATCH_SIZE,
        workers=workers,
        threshold=threshold,
        variant=variant,
    )
    labels, scores, counts, errors = score_folders(scanner, real, fake)
    metrics = binary_report(labels, scores, scanner.threshold)
    return Evaluation(
        metrics=metrics,
        counts=counts,
        threshold=float(scanner.threshold),
        model=str(scanner.model_name),
        provider=str(scanner.provider),
        variant=str(scanner.variant),
        seconds=time.perf_counter() - start,
        warnings=list(scanner.warnings),
        errors=errors,
    )
