"""The detector stage of a run: zoo fakes -> forensic discriminator -> LOFO table -> final.pt.

Runs after the generator phases (`imgcheck train` calls it as its classifier phase; it can also
be re-run on a finished run folder, e.g. to add a zoo family):

    python -m imgcheck.trainer.detector_stage --run runs/NAME [--lofo] [--onnx-colorizer F]

1. build the zoo from the run's training photos and generator snapshots (`trainer.zoo`),
2. colorize + degrade + featurize once into RUN/zoo/ (`trainer.zoo_data`; resumable),
3. optionally the leave-one-family-out table (`trainer.lofo`) -> RUN/lofo.json, RUN/lofo.md,
4. fit the shipped head on all families, calibrate its threshold on the real validation
   photos (at most the FPR target on clean and on 4:2:0 copies, each), and write it into
   checkpoints/final.pt for `imgcheck export`,
5. calibrate the scan cascade's stage thresholds against the shipped detector
   (`trainer.cascade`) -> RUN/cascade.json and final.pt (`--no-cascade` leaves it out).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from imgcheck.trainer import cascade
from imgcheck.trainer.config import TrainConfig, TrainError
from imgcheck.trainer.data import Split, load_rgb, to_tensor
from imgcheck.trainer.detector_head import ForensicConfig, ForensicDetector
from imgcheck.trainer.lofo import (
    ZooData,
    calibration_info,
    fit_shipped,
    markdown_table,
    run_lofo,
)
from imgcheck.trainer.nets import generator_config
from imgcheck.trainer.runs import load_checkpoint, load_json, save_json, save_torch
from imgcheck.trainer.zoo import ZooContext, build_zoo, families
from imgcheck.trainer.zoo_data import precompute
from imgcheck.view import ViewSpec

FIT_PHOTOS = 256  # training photos the fitted families (knn, lut, cnn, exemplar refs) see


def detector_view(cfg: TrainConfig) -> ViewSpec:
    """The shipped view: tiles covering the whole image at `det_max_side`."""
    return ViewSpec(
        mode="tiles", max_side=cfg.det_max_side, crop=cfg.det_tile, aggregate="logit_mean"
    )


def run_stage(
    run_dir: Path,
    lofo: bool = False,
    onnx_colorizers: list[str] | None = None,
    processes: int = 2,
    say: Any = print,
    only: list[str] | None = None,
    fit: bool = True,
    with_cascade: bool = True,
    cascade_only: bool = False,
    recalibrate: bool = False,
) -> dict[str, Any]:
    """`only`: precompute just these families (the rest later); `fit=False`: stop after the zoo;
    `with_cascade=False`: no cascade (the export then ships none); `cascade_only`: keep the
    detector final.pt holds and calibrate only the cascade for it; `recalibrate`: keep that
    detector's head, re-derive its threshold (`lofo.calibrate_threshold`) and its cascade."""
    run_dir = Path(run_dir)
    cfg = TrainConfig.from_dict(load_json(run_dir / "config.json")["config"])
    split = Split.from_dict(load_json(run_dir / "split.json"))
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    gcfg = asdict(generator_config(cfg))
    names = [n for n in cfg.sources("zoo_families") if n in families()]
    spec = detector_view(cfg)
    zoo_dir = run_dir / "zoo"
    train_paths, val_paths = split.paths("train"), split.paths("val")
    missing = [
        n
        for n in (only or names)
        if not (
            (zoo_dir / "train" / f"{n}.npz").exists() and (zoo_dir / "val" / f"{n}.npz").exists()
        )
    ]
    t0 = time.time()
    reals = [zoo_dir / split / "real.npz" for split in ("val", "train")]
    if missing or not all(p.exists() for p in reals):
        photos = [
            to_tensor(load_rgb(p, cfg.work_size)).float() / 255.0 for p in train_paths[:FIT_PHOTOS]
        ]
        ctx = ZooContext(
            photos=photos,
            snapshots=state["snapshots"],
            generator_config=gcfg,
            work_size=cfg.work_size,
            seed=cfg.seed,
            onnx_colorizers=list(onnx_colorizers or []),
        )
        torch.set_num_threads(max(1, cfg.threads or 1))
        zoo = build_zoo(missing, ctx)
        say(f"zoo: built {', '.join(zoo)} in {time.time() - t0:.0f} s")
        precompute(
            zoo,
            train_paths,
            val_paths,
            zoo_dir,
            spec,
            cfg.max_side,
            cfg.seed,
            per_photo=cfg.zoo_per_photo,
            all_names=names,
            processes=processes,
            say=say,
        )
    if not fit:
        return {"zoo_s": time.time() - t0}
    data = ZooData.load(zoo_dir)
    result: dict[str, Any] = {"zoo_s": time.time() - t0, "families": data.families}
    final_path = run_dir / "checkpoints" / "final.pt"
    if cascade_only or recalibrate:
        final = torch.load(final_path, map_location="cpu", weights_only=True)
        if final.get("detector_kind") != "forensic":
            raise TrainError(f"{final_path} holds no forensic detector to calibrate")
        det = ForensicDetector(ForensicConfig.from_dict(dict(final["detector_config"])))
        det.load_state_dict(final["detector"])
        det.eval()
        spec = ViewSpec.from_dict(dict(final["view"]))
        if cascade_only:
            final["cascade"] = calibrate_cascade(run_dir, data, det, final["threshold"], spec, say)
            save_torch(final, final_path)
            return result
        threshold, info = calibration_info(det, data, cfg.fpr, say=say)
    else:
        if lofo:
            t1 = time.time()
            table = run_lofo(data, say=say)
            save_json({"table": table, "families": data.families}, run_dir / "lofo.json")
            (run_dir / "lofo.md").write_text(markdown_table(table) + "\n", encoding="utf-8")
            result["lofo_s"] = time.time() - t1
            result["lofo"] = table
        det, threshold, info = fit_shipped(data, cfg.fpr, say=say)
        final = torch.load(final_path, map_location="cpu", weights_only=True)
    photos = info["calibration_photos"]
    rule = (
        f"score >= threshold means colorized; threshold = the smallest value at which a new real "
        f"photo is flagged with probability <= {cfg.fpr:.2%} (split-conformal: "
        f"{info['expected_fpr_new_photos']:.2%}), from {info['n_real_calibration']} real photos "
        f"({photos['validation']} validation, {photos['training_out_of_fold']} training scored out "
        f"of fold), clean and 4:2:0 re-encoded each (view tiles {spec.crop} px at max_side "
        f"{spec.max_side}, logit mean)"
    )
    final.pop("cascade", None)  # a cascade belongs to the detector it was calibrated for
    if with_cascade:
        final["cascade"] = calibrate_cascade(run_dir, data, det, threshold, spec, say)
    final.update(
        detector=det.state_dict(),
        detector_config=det.cfg.to_dict(),
        detector_kind="forensic",
        threshold=threshold,
        threshold_rule=rule,
        view=spec.to_dict(),
    )
    metrics = dict(final.get("metrics") or {})
    metrics["detector_zoo"] = info
    if "lofo" in result:
        metrics["lofo"] = result["lofo"]
    final["metrics"] = metrics
    save_torch(final, final_path)
    save_json(info, run_dir / "detector.json")
    held = info["real_flagged_held_out"]
    say(
        f"detector: threshold {threshold:.4f}; real flagged clean {info['real_flagged_clean']:.3f}, "
        f"4:2:0 {info['real_flagged_420']:.3f} of {info['n_real_calibration']} (held out "
        f"{held['clean']:.3f}, {held['420']:.3f}; expected {info['expected_fpr_new_photos']:.4f});"
        f" wrote {final_path}"
    )
    result.update(info)
    return result


def calibrate_cascade(
    run_dir: Path,
    data: ZooData,
    det: ForensicDetector,
    threshold: float,
    spec: ViewSpec,
    say: Any,
    stages: tuple[int, ...] = cascade.STAGES,
) -> dict[str, Any]:
    """The scan cascade's stages for this detector (final.pt's `cascade`, the manifest's
    `detector.cascade`), with what they keep and cost on validation -> RUN/cascade.json."""
    groups = cascade.val_tiles(det, data)
    how = spec.aggregate
    chosen = cascade.calibrate(groups, threshold, how, stages)
    measured = cascade.measure(groups, chosen, threshold, how)
    held_out = cascade.split_half(groups, threshold, how, stages)
    info = {
        "keep": cascade.KEEP,
        "margin": cascade.MARGIN,
        "n_val_photos": len(groups["real"]["clean"]),
        "summary": cascade.summary(measured),
        "held_out_worst_kept": held_out["worst_kept"],
    }
    save_json({**info, "measured": measured, "split_half": held_out}, run_dir / "cascade.json")
    table = cascade.markdown(measured, held_out, threshold)
    (run_dir / "cascade.md").write_text(table + "\n", encoding="utf-8")
    s = info["summary"]
    say(
        "cascade: "
        + ", ".join(f"stop after {k} tiles below {t:.4f}" for k, t in chosen)
        + f"; real photos score "
        f"{s['real_tiles_per_image']:.1f} of {s['real_tiles_without']:.1f} tiles; detections "
        f"kept {s['worst_kept']:.3f} (held-out half {held_out['worst_kept']:.3f})"
    )
    return {
        "stages": [{"tiles": k, "threshold": t} for k, t in chosen],
        "detector_threshold": threshold,
        "view": spec.to_dict(),
        "calibrated_on": info,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.detector_stage")
    ap.add_argument(
        "--run", required=True, type=Path, help="a run folder with its generator phases done"
    )
    ap.add_argument("--lofo", action="store_true", help="also run leave-one-family-out")
    ap.add_argument("--onnx-colorizer", action="append", default=[], help="add to the onnx family")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--only", default="", help="precompute only these families (comma separated)")
    ap.add_argument("--zoo-only", action="store_true", help="stop after precomputing the zoo")
    ap.add_argument("--no-cascade", action="store_true", help="no scan cascade")
    ap.add_argument(
        "--cascade-only",
        action="store_true",
        help="keep final.pt's detector; calibrate only its cascade",
    )
    ap.add_argument(
        "--recalibrate",
        action="store_true",
        help="keep final.pt's detector head; re-derive its threshold and cascade",
    )
    args = ap.parse_args(argv)
    only = [f for f in args.only.split(",") if f] or None
    try:
        run_stage(
            args.run,
            args.lofo,
            args.onnx_colorizer,
            args.processes,
            only=only,
            fit=not args.zoo_only,
            with_cascade=not args.no_cascade,
            cascade_only=args.cascade_only,
            recalibrate=args.recalibrate,
        )
    except (TrainError, FileNotFoundError, KeyError) as exc:
        print(f"imgcheck train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
