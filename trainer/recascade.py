"""Re-calibrate the scan cascade of shipped models, keeping their detector graph and head.

The cascade's stages (`trainer.cascade.STAGES`) are chosen after the head is trained, from the
validation zoo's tile scores; changing them needs neither a retrain nor a new graph, and a
rebuilt run retrains the head (another draw, another threshold). So this reads the shipped head
back from detector.onnx (`export.regraph.head_from_graph`), proves it reproduces the graph,
scores a run's validation zoo with it, calibrates the stages at the manifest's threshold
exactly as the detector stage does (its tables to RUN/recascade/), and writes a copy of the model folder whose manifest has
the new `detector.cascade` (every file, the graph and the threshold unchanged):

    python -m imgcheck.trainer.recascade --models detector/models --run runs/NAME --out DIR

The run must have the models' validation split (a run rebuilt from them with the shipped
config: `trainer.rebuild`), so that the photos calibrated on are ones the head never trained
on, and the models' view, through which its zoo tiles were cut.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from imgcheck.cascade import problems
from imgcheck.export import manifest as mf
from imgcheck.export.api import check_out, staging
from imgcheck.export.errors import ExportError
from imgcheck.export.regraph import head_from_graph, read_models
from imgcheck.export.verify import detector_shapes, verify_detector
from imgcheck.models import MANIFEST
from imgcheck.trainer import cascade
from imgcheck.trainer.config import TrainError
from imgcheck.trainer.detector_stage import calibrate_cascade
from imgcheck.trainer.lofo import ZooData
from imgcheck.view import ViewSpec


def recascade(
    models: Path,
    run_dir: Path,
    out: Path,
    *,
    stages: tuple[int, ...] = cascade.STAGES,
    overwrite: bool = False,
    say: Any = print,
) -> dict[str, Any]:
    """MODELS -> OUT with the cascade calibrated on RUN's validation zoo; the new cascade."""
    models = Path(os.path.abspath(models))
    if Path(os.path.abspath(out)) == models:
        raise ExportError("--out must be another folder than the models (they stay as they are)")
    manifest, graph = read_models(models)
    entry = manifest["detector"]
    try:
        threshold, view = float(entry["threshold"]), dict(entry["view"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{models} is not an imgcheck model folder: {exc}") from exc
    final_path = run_dir / "checkpoints" / "final.pt"
    if not (run_dir / "zoo").is_dir() or not final_path.is_file():
        raise TrainError(f"{run_dir} has no zoo and final.pt: run the detector stage first")
    run_view = dict(torch.load(final_path, map_location="cpu", weights_only=True)["view"])
    if run_view != view:
        raise TrainError(f"{run_dir}'s zoo was cut with view {run_view}, the models use {view}")
    out = check_out(out, overwrite=overwrite, opset=int(manifest.get("opset", 18)), calib=None)

    det = head_from_graph(graph)
    verify_detector(
        det, graph, detector_shapes(int(view["crop"]), int(det.min_size)), det.parity_bound
    )
    say(f"head read back from {entry['file']} (parity within {det.parity_bound})")
    before = entry.get("cascade")
    data = ZooData.load(run_dir / "zoo")
    report = run_dir / "recascade"  # cascade.json / .md: the run's own stay as they are
    report.mkdir(exist_ok=True)
    new = calibrate_cascade(report, data, det, threshold, ViewSpec.from_dict(view), say, stages)
    new["calibrated_on"]["zoo"] = f"{run_dir.name}/zoo (validation split)"
    bad = problems(mf.clean(new))
    if bad:
        raise ExportError(f"the calibrated cascade is not valid: {'; '.join(bad)}")
    with staging(out) as tmp:
        for item in models.iterdir():
            if item.is_file() and item.name != MANIFEST:
                shutil.copy2(item, tmp / item.name)
        updated = copy.deepcopy(manifest)
        updated["detector"]["cascade"] = new
        updated["recascade"] = {
            "created": mf.now(),
            "run": run_dir.name,
            "stages_before": before.get("stages") if isinstance(before, dict) else None,
        }
        mf.write(tmp, updated)
    return mf.clean(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.recascade")
    ap.add_argument("--models", required=True, type=Path, help="a model folder (manifest.json)")
    ap.add_argument("--run", required=True, type=Path, help="a run with the models' split's zoo")
    ap.add_argument("--out", required=True, type=Path, help="where the re-calibrated copy goes")
    ap.add_argument("--stages", type=int, nargs="+", default=list(cascade.STAGES))
    ap.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = ap.parse_args(argv)
    try:
        new = recascade(
            args.models, args.run, args.out, stages=tuple(args.stages), overwrite=args.overwrite
        )
    except (ExportError, TrainError) as exc:
        print(f"imgcheck recascade: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (stages {new['stages']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
