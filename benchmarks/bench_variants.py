"""Detector variants vs fp32: image AUC through the scan view, and crops/s.

    python benchmarks/bench_variants.py RUN_DIR EXPORTED_DIR [--real DIR] [--fake DIR]

EXPORTED_DIR is what `imgcheck export` wrote. Real photos come from --real, else the run's
validation split (split.json), else synthetic photo-like images (`--count` of them; the AUC of
a trained detector on those says little, the *delta* between variants still does). Fakes come
from --fake, else the real photos colorized by EXPORTED_DIR/colorizer.onnx. Variants are taken
from EXPORTED_DIR when present there, else built into a temp folder (int8 calibrated on these
crops), so a `--no-variants` export can be measured too. Needs no torch.

int8 is timed against fp32 on the CPU provider; fp16 against fp32 on CUDA when onnxruntime has
it, otherwise on CPU (then its speed ratio says nothing about GPUs, and the table says so).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def _load(folder: Path, count: int, max_side: int) -> list[np.ndarray]:
    from imgcheck.export import variants as ev

    return [ev.load_rgb(p, max_side) for p in ev.list_images(folder)[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="training run folder (for split.json)")
    parser.add_argument("exported", type=Path, help="folder written by imgcheck export")
    parser.add_argument("--real", type=Path, help="folder of real colour photos")
    parser.add_argument("--fake", type=Path, help="folder of colorized photos")
    parser.add_argument("--count", type=int, default=64, help="images per class (default 64)")
    parser.add_argument("--batch", type=int, default=16, help="crops per run (default 16)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per variant")
    parser.add_argument("--threads", type=int, help="ORT intra-op threads (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from imgcheck.export import variants as ev
    from imgcheck.export.quantize import build_variants
    from imgcheck.export.samples import natural_image
    from imgcheck.models import read_manifest
    from imgcheck.session import Device, available_providers, create_session
    from imgcheck.view import ViewSpec

    manifest = read_manifest(args.exported)
    view = ViewSpec.from_dict(manifest["detector"]["view"])
    rng = np.random.default_rng(0)

    if args.real:
        real, source = _load(args.real, args.count, view.max_side), str(args.real)
    else:
        paths = ev.validation_images(args.run_dir)[: args.count]
        real, source = [ev.load_rgb(p, view.max_side) for p in paths], "split.json val"
    if len(real) < 2:
        side = min(view.max_side, max(view.crop * 2, 320))
        real = [natural_image(rng, side * 3 // 4, side) for _ in range(args.count)]
        source = f"{args.count} synthetic photo-like images {side}x{side * 3 // 4}"
    if args.fake:
        fakes, fake_source = _load(args.fake, args.count, view.max_side), str(args.fake)
    else:
        colorizer = create_session(args.exported / manifest["colorizer"]["file"], Device.CPU)
        fakes, fake_source = ev.colorize(colorizer, real), "real images colorized by colorizer.onnx"
    print(f"real: {len(real)} from {source}\nfake: {len(fakes)} {fake_source}")
    crops, counts, labels = ev.eval_set(real, fakes, view)
    print(f"view {view.to_dict()}: {len(crops)} crops")

    fp32 = args.exported / manifest["detector"]["file"]
    files = {"fp32": fp32}
    shipped = manifest.get("variants", {})
    with tempfile.TemporaryDirectory(prefix="imgcheck-bench-") as scratch:
        present = {n: args.exported / f"detector.{n}.onnx" for n in ("int8", "fp16")}
        if all(p.is_file() for p in present.values()):
            files.update(present)
            origin = "from the export"
        else:
            files.update(build_variants(fp32, Path(scratch), ev.calibration_batches(crops)))
            origin = "built here (calibrated on these crops)"
        print(f"variants {origin}; providers: {', '.join(available_providers())}")
        results = ev.measure(
            files, crops, counts, labels, args.batch, args.seconds, threads=args.threads,
            how=view.aggregate,
        )

    print()
    print(
        f"{'variant':<10}{'provider':<14}{'AUC':>8}{'delta':>9}{'max|ds|':>9}"
        f"{'crops/s':>10}{'ratio':>7}  ship?"
    )
    for name, res in results.items():
        short = res["provider"].replace("ExecutionProvider", "")
        base = name.split("_")[0]
        ok = "-" if base == "fp32" else ("yes" if -res["auc_delta"] <= ev.MAX_AUC_DROP else "no")
        tag = " (in manifest)" if f"detector_{base}" in shipped else ""
        print(
            f"{name:<10}{short:<14}{res['auc']:>8.4f}{res['auc_delta']:>+9.4f}"
            f"{res['max_score_diff']:>9.4f}"
            f"{res['crops_per_s']:>10.1f}{res['speed_ratio']:>7.2f}  {ok}{tag}"
        )
    if "fp16" in results and results["fp16"]["provider"] == "CPUExecutionProvider":
        print("note: no CUDA provider here; the fp16 speed ratio is a CPU number, not a GPU one")
    if args.json:
        args.json.write_text(json.dumps({"source": source, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
