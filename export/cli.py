"""`imgcheck export RUN_DIR --out DIR`: ONNX models + manifest.json from a finished training run."""

from __future__ import annotations

from pathlib import Path

import typer

from imgcheck.cli_common import command_errors, require_extra


def export_command(
    run_dir: Path = typer.Argument(
        ..., help="Training run folder (reads RUN_DIR/checkpoints/final.pt).", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder to write the models and manifest.json into."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="Folder of real photos to calibrate int8 and measure variant AUC "
        "(default: the run's validation split from split.json).",
    ),
    calib_count: int = typer.Option(
        64, "--calib-count", min=2, help="At most this many calibration photos."
    ),
    variants: bool = typer.Option(
        True, "--variants/--no-variants", help="Build the int8 (CPU) and fp16 (CUDA) detectors."
    ),
    opset: int = typer.Option(18, "--opset", min=18, help="ONNX opset (18 or newer)."),
    regraph: bool = typer.Option(
        False,
        "--regraph",
        help="RUN_DIR is a model folder (manifest.json): re-trace its detector through this "
        "version's feature graph, keeping its head and calibration (scores must move < 1e-4); "
        "for a shipped model whose run folder is gone.",
    ),
) -> None:
    """Export the colorizer and the detector to ONNX, verified against PyTorch.

    Writes colorizer.onnx, detector.onnx, the variants that keep the AUC within 0.005 of fp32,
    and manifest.json. Exit 0 on success, 2 on any error (nothing is left half-written), 130 on
    Ctrl-C.
    """
    with command_errors(
        "export", interrupted="interrupted: nothing was written", describe=_describe
    ):
        require_extra("export", "train", ("torch", "onnx"))
        from imgcheck.export.api import export_run
        from imgcheck.export.regraph import regraph_models

        def say(message: str) -> None:
            typer.echo(f"imgcheck export: {message}", err=True)

        build = regraph_models if regraph else export_run
        manifest = build(
            run_dir,
            out,
            overwrite=overwrite,
            opset=opset,
            calib=calib,
            calib_count=calib_count,
            variants=variants,
            say=say,
        )
        _print_written(manifest, out)


def _describe(exc: Exception) -> str | None:
    """ExportError: its message; a missing optional module: which extra brings it; else None
    (command_errors' internal error line). OUT is never left half-written."""
    from imgcheck.errors import first_line, install_hint
    from imgcheck.export.errors import ExportError

    if isinstance(exc, ExportError):
        return str(exc)
    if isinstance(exc, ImportError):
        return f"{first_line(exc)}: {install_hint('train')}"
    if isinstance(exc, OSError):
        return f"export failed: {first_line(exc)}"
    return None


def _print_written(manifest: dict, out: Path) -> None:
    for kind in ("colorizer", "detector"):
        entry = manifest[kind]
        parity = ", ".join(f"{k} {v:.2g}" for k, v in entry["parity"]["max_abs"].items())
        typer.echo(f"{out / entry['file']}  (max |ONNX - torch|: {parity})")
    for name, entry in manifest["variants"].items():
        typer.echo(
            f"{out / entry['file']}  ({name}: AUC delta {entry['auc_delta']:+.4f}, "
            f"speed x{entry['speed_ratio']:.2f} on {entry['speed_provider']})"
        )
    for name, reason in manifest["variants_skipped"].items():
        typer.echo(f"{name} not shipped: {reason}")
    typer.echo(f"{out / 'manifest.json'}")
