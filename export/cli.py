"""`imgcheck export RUN_DIR --out DIR`: ONNX models + manifest.json from a finished training run."""

from __future__ import annotations

from pathlib import Path

import typer


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
) -> None:
    """Export the colorizer and the detector to ONNX, verified against PyTorch.

    Writes colorizer.onnx, detector.onnx, the variants that keep the AUC within 0.005 of fp32, and manifest.json. Exit 0 on success, 2 on any error (nothing is left half-written).
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo(
            "error: imgcheck export needs torch. Install the training extra: "
            "pip install torch==2.13.0 && pip install 'imgcheck[train,cpu]'",
            err=True,
        )
        raise typer.Exit(2) from None

    from imgcheck.export.api import export_run
    from imgcheck.export.errors import ExportError
    from imgcheck.session import ModelError

    def say(message: str) -> None:
        typer.echo(f"export: {message}", err=True)

    try:
        manifest = export_run(
            run_dir,
            out,
            overwrite=overwrite,
            opset=opset,
            calib=calib,
            calib_count=calib_count,
            variants=variants,
            say=say,
        )
    except (ExportError, ModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ImportError as exc:
        typer.echo(
            f"error: {exc}. Install the training extra: pip install 'imgcheck[train]'", err=True
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was written", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # internal error: still one line and exit 2, OUT untouched
        typer.echo(f"error: export failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None

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
