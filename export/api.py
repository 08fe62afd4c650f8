"""`export_run`: a finished run folder -> a verified, self-describing model folder.

Order of work: load and check `final.pt`; export each graph, verify it against PyTorch and only
then save it; build and measure the detector variants; write `manifest.json` last. Everything is
written into a temporary folder beside OUT and renamed into place at the end, so OUT is either
the complete new export or untouched: a failure (bad checkpoint, parity, full disk, Ctrl-C)
leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imgcheck.export.errors import ExportError

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished tmp folder to OUT; an existing OUT (allowed by --overwrite) is replaced."""
    backup = None
    if out.exists():
        backup = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, backup)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if backup is not None:
            os.replace(backup, out)
        raise ExportError(f"cannot move the export into {out}: {exc}") from exc
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def check_out(out: Path, *, overwrite: bool, opset: int, calib: Path | None) -> Path:
    """The checks every export makes before any work: OUT as an absolute path, or ExportError."""
    out = Path(os.path.abspath(out))  # "models/", ".", ".." -> a real name and parent
    if opset < 18:
        raise ExportError(f"--opset {opset}: opset 18 or newer is needed (antialiased Resize)")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass --overwrite to replace it")
    if calib is not None and not Path(calib).is_dir():
        raise ExportError(f"--calib {calib}: not a folder")
    return out


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside OUT to write the export into; renamed to OUT when the block
    ends, removed (OUT untouched) when it raises, Ctrl-C included."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; OUT gets the usual permissions
    except OSError as exc:
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_run(
    run_dir: Path,
    out: Path,
    *,
    overwrite: bool = False,
    opset: int = 18,
    calib: Path | None = None,
    calib_count: int = 64,
    variants: bool = True,
    say: Say = _quiet,
    timing_seconds: float = 1.5,
) -> dict[str, Any]:
    """Export RUN_DIR/checkpoints/final.pt into OUT; return the manifest that was written."""
    from imgcheck.export.checkpoint import load_run

    out = check_out(out, overwrite=overwrite, opset=opset, calib=calib)
    run = load_run(Path(run_dir))
    with staging(out) as tmp:
        manifest = _build(run, tmp, opset, calib, calib_count, variants, say, timing_seconds)
    return manifest


def _build(
    run: Any,
    tmp: Path,
    opset: int,
    calib: Path | None,
    calib_count: int,
    variants: bool,
    say: Say,
    timing_seconds: float,
) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import torch

    from imgcheck import __version__
    from imgcheck.export import manifest as mf
    from imgcheck.export.onnx_export import (
        export_colorizer,
        export_detector,
        io_spec,
        save_model,
    )
    from imgcheck.export.verify import detector_shapes, verify_colorizer, verify_detector

    say("exporting the colorizer")
    colorizer = export_colorizer(run.generator, run.work_size, opset)
    say("verifying the colorizer against PyTorch")
    c_parity = verify_colorizer(run.generator, run.work_size, colorizer)
    save_model(colorizer, tmp / "colorizer.onnx")

    say("exporting the detector")
    view = run.view.to_dict()
    detector = export_detector(run.detector, run.threshold, view, run.view.crop, opset)
    say("verifying the detector against PyTorch")
    min_side = int(run.detector.min_size)
    d_parity = verify_detector(
        run.detector,
        detector,
        detector_shapes(run.view.crop, min_side),
        bound=run.detector.parity_bound,
    )
    save_model(detector, tmp / "detector.onnx")

    manifest: dict[str, Any] = {
        "imgcheck_manifest": 1,
        "version": __version__,
        "created": mf.now(),
        "opset": opset,
        "training_data_digest": run.data_digest,
        "metrics": run.metrics,
        "detector": mf.file_entry(
            tmp,
            "detector.onnx",
            **io_spec(detector),
            threshold=run.threshold,
            threshold_rule=run.threshold_rule,
            view=view,
            min_side=min_side,
            parity=d_parity.to_dict(),
        ),
        "colorizer": mf.file_entry(
            tmp,
            "colorizer.onnx",
            **io_spec(colorizer),
            work_size=run.work_size,
            min_side=1,
            parity=c_parity.to_dict(),
        ),
        "variants": {},
        "variants_skipped": {},
        "trained_with": run.version,
        "exporter": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    if run.cascade is not None:
        manifest["detector"]["cascade"] = run.cascade
    if variants:
        _variants(run, tmp, manifest, calib, calib_count, say, timing_seconds)
    else:
        manifest["variants_skipped"] = {
            "detector_int8": "--no-variants",
            "detector_fp16": "--no-variants",
        }
    mf.write(tmp, manifest)
    return mf.clean(manifest)


def _variants(
    run: Any,
    tmp: Path,
    manifest: dict[str, Any],
    calib: Path | None,
    calib_count: int,
    say: Say,
    timing_seconds: float,
) -> None:
    """Build int8/fp16, measure AUC and speed vs fp32, keep those that lose <= 0.005 AUC."""
    import onnx

    from imgcheck.export import manifest as mf
    from imgcheck.export import variants as ev
    from imgcheck.export.onnx_export import io_spec
    from imgcheck.export.quantize import build_variants
    from imgcheck.export.verify import detector_shapes, verify_detector
    from imgcheck.session import Device, create_session

    skipped = manifest["variants_skipped"]
    paths = ev.list_images(calib) if calib is not None else ev.validation_images(run.run_dir)
    source = str(calib) if calib is not None else "split.json val"
    real = []
    for path in paths:
        if len(real) >= calib_count:
            break
        try:
            real.append(ev.load_rgb(path, run.view.max_side))
        except Exception as exc:  # an unreadable image is skipped, and said so
            say(f"skipping unreadable calibration image {path}: {exc}")
    if len(real) < 2:
        reason = (
            f"no AUC data: {len(real)} readable validation images from {source} "
            "(pass --calib DIR with real photos)"
        )
        skipped.update({"detector_int8": reason, "detector_fp16": reason})
        say(f"variants not shipped: {reason}")
        return

    say(f"measuring variants on {len(real)} real images from {source} and their colorized fakes")
    fakes = ev.colorize(create_session(tmp / "colorizer.onnx", Device.CPU), real)
    crops, counts, labels = ev.eval_set(real, fakes, run.view)
    say("building the int8 (static QDQ, per-channel) and fp16 detectors")
    files = build_variants(tmp / "detector.onnx", tmp, ev.calibration_batches(crops))
    everything = {"fp32": tmp / "detector.onnx", **files}
    results = ev.measure(
        everything, crops, counts, labels, seconds=timing_seconds, how=run.view.aggregate
    )
    manifest["variant_eval"] = {
        "source": source,
        "real_images": len(real),
        "fake_images": len(fakes),
        "crops": len(crops),
        "auc_fp32": results["fp32"]["auc"],
        "max_auc_drop": ev.MAX_AUC_DROP,
        "results": results,
        "calibration": "int8 ranges from up to 256 of these crops (MinMax)",
    }
    for name, path in files.items():
        key, res = f"detector_{name}", results[name]
        reason = None
        if name == "fp16":  # on top of AUC: outputs must stay close to fp32 (loose bound)
            try:
                shapes = detector_shapes(run.view.crop, int(run.detector.min_size))[:2]
                verify_detector(run.detector, path.read_bytes(), shapes, bound=1e-2)
            except ExportError as exc:
                reason = str(exc)
        drop = -res["auc_delta"]
        if reason is None and not drop <= ev.MAX_AUC_DROP:
            reason = f"AUC drop {drop:.4f} > {ev.MAX_AUC_DROP}"
        if reason is not None:
            skipped[key] = reason
            say(f"{key} not shipped: {reason}")
            path.unlink()
            continue
        manifest["variants"][key] = mf.file_entry(
            tmp,
            path.name,
            **io_spec(onnx.load(str(path))),
            device="cpu" if name == "int8" else "cuda",
            auc=res["auc"],
            auc_delta=res["auc_delta"],
            speed_ratio=res["speed_ratio"],
            speed_provider=res["provider"],
        )
        say(
            f"{key}: AUC {res['auc']:.4f} (delta {res['auc_delta']:+.4f}), "
            f"speed x{res['speed_ratio']:.2f} on {res['provider']}"
        )
