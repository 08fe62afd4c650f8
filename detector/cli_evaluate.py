"""`imgcheck evaluate`: how well does the detector separate real photos from colorized ones?

Only cheap imports here (typer, pathlib, enum, and the torch-free, onnxruntime-free session
and models modules for the Device and Variant enums); numpy, onnxruntime and the scan pipeline load inside the command.
Exit codes: 0 = evaluated, 2 = usage, input or model error (like every imgcheck command).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from imgcheck.cli_common import command_errors, fail, several_values, warn
from imgcheck.models import Variant
from imgcheck.options import DEFAULT_BATCH_SIZE, MAX_WORKERS
from imgcheck.session import Device
from imgcheck.terminal import printable

# `--real a.jpg b.jpg --fake c/`: a shell glob after one flag works unquoted.
COMMAND_CLASS = several_values("--real", "--fake")


class EvalFormat(str, Enum):
    TABLE = "table"
    JSON = "json"


# Rows of the table: (key in binary_report, label, kind) - kind "ratio" prints as a percentage.
ROWS = (
    ("auc", "ROC AUC", "score"),
    ("ap", "Average precision", "score"),
    ("acc_real", "Accuracy on real", "ratio"),
    ("acc_fake", "Accuracy on colorized", "ratio"),
    ("hter", "HTER (mean of FPR and FNR)", "ratio"),
    ("tpr_at_fpr1", "TPR at 1% FPR", "ratio"),
    ("tpr_at_fpr5", "TPR at 5% FPR", "ratio"),
)


def _fail(message: str) -> typer.Exit:
    return fail("evaluate", message)


def _check_inputs(real: list[Path], fake: list[Path]) -> None:
    import glob

    for option, paths in (("--real", real), ("--fake", fake)):
        for path in paths:
            if not path.exists() and not (glob.has_magic(str(path)) and glob.glob(str(path))):
                raise _fail(f"{option} path not found: {path}")
    real_dirs = [p.resolve() for p in real if p.exists()]
    for f in (p.resolve() for p in fake if p.exists()):
        for r in real_dirs:
            if f == r or f in r.parents or r in f.parents:
                raise _fail(
                    f"--real {r} and --fake {f} overlap: every image must be in exactly one "
                    "of them (give two separate folders)"
                )


def _format_value(value: object, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    number = float(value)  # type: ignore[arg-type]
    return f"{100 * number:.1f} %" if kind == "ratio" else f"{number:.4f}"


def _print_table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)  # piped: whole lines, not 80-column folds
    metrics, counts = data["metrics"], data["counts"]
    table = Table(title="imgcheck evaluate", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, kind in ROWS:
        table.add_row(label, _format_value(metrics.get(key), kind))
    table.add_row("Threshold (score >= t = colorized)", f"{data['threshold']:.4f}")
    console.print(table)

    def describe(c: dict) -> str:
        errors = f"{c['error']} error" + ("" if c["error"] == 1 else "s")
        small = f"{c['too_small']} too small, " if c.get("too_small") else ""
        return f"{c['ok']} scored, {c['grayscale']} grayscale, {small}{errors}"

    console.print(f"real: {describe(counts['real'])}; colorized: {describe(counts['fake'])}")
    variant = data.get("variant", "fp32")
    provider = data["provider"] + ("" if variant == "fp32" else f", {variant}")
    console.print(
        f"model: {data['model']} | provider: {provider} | {data['seconds']:.1f} s",
        highlight=False,
    )


def evaluate_command(
    real: list[Path] = typer.Option(
        ...,
        "--real",
        help="Real colour photos: folders, files or globs; several may follow one --real.",
        metavar="PATH",
        show_default=False,
    ),
    fake: list[Path] = typer.Option(
        ...,
        "--fake",
        help="Colorized images: folders, files or globs; several may follow one --fake.",
        metavar="PATH",
        show_default=False,
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model folder with manifest.json, or a detector .onnx file. Default: the shipped model.",
    ),
    output_format: EvalFormat = typer.Option(
        EvalFormat.TABLE, "--format", "-f", help="table (for people) or json (for tools)."
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Decision threshold: score >= threshold means colorized. Default: the model's calibrated one.",
    ),
    device: Device = typer.Option(Device.AUTO, "--device", help="auto, cpu or cuda."),
    variant: Variant = typer.Option(
        Variant.FP32,
        "--variant",
        help="Detector build to measure: fp32 (the calibrated model), int8 (network part "
        "quantized, small score difference) or fp16 (for CUDA). The model folder must ship it.",
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, "--batch-size", min=1, help="Images per inference call."
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, max=MAX_WORKERS, help="Decode threads (0: one per core, at most 8)."
    ),
) -> None:
    """Measure the detector on labelled folders: AUC, AP, accuracy on real and on colorized
    images, HTER, and TPR at 1% and 5% FPR. Grayscale and unreadable images are left out of the
    metrics and counted."""

    def describe(exc: Exception) -> str | None:
        return f"{type(exc).__name__}: {exc}" if isinstance(exc, (OSError, ValueError)) else None

    with command_errors("evaluate", describe=describe):
        _check_inputs(real, fake)
        from imgcheck.evaluate import evaluate

        result = evaluate(
            [str(p) for p in real],
            [str(p) for p in fake],
            model=model,
            device=device,
            threshold=threshold,
            batch_size=batch_size,
            workers=workers or None,
            variant=variant.value,
        )
        _report(result, output_format)


def _report(result: Any, output_format: EvalFormat) -> None:
    """Print the evaluation (stdout) and its notes (stderr); exit 2 if a set had no image."""
    import json

    for warning in result.warnings:
        warn("evaluate", warning)
    data = result.to_dict()
    empty = [
        (option, c)
        for option, c in (("--real", result.counts["real"]), ("--fake", result.counts["fake"]))
        if c.ok == 0
    ]
    if empty:
        details = "; ".join(
            f"{option}: no image could be scored ({c.grayscale} grayscale, {c.too_small} too "
            f"small, {c.error} errors)"
            for option, c in empty
        )
        failed = _fail(f"{details}. Both sets need colour images the detector can read.")
        for err in result.errors[:5]:
            typer.echo(printable(f"  {err['set']}: {err['path']}: {err['error']}"), err=True)
        raise failed

    if output_format is EvalFormat.JSON:
        typer.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        _print_table(data)
    for note in result.metrics.get("notes", []):
        typer.echo(f"imgcheck evaluate: note: {note}", err=True)
    if result.errors:
        total = result.counts["real"].error + result.counts["fake"].error
        typer.echo(
            f"imgcheck evaluate: {total} unreadable file(s) left out, e.g. "
            f"{result.errors[0]['path']}: {result.errors[0]['error']}",
            err=True,
        )
