"""The detector stage of a run: zoo fakes -> forensic discriminator -> LOFO table -> final.pt.

Runs after the generator phases (`imgcheck train` calls it as its classifier phase; it can also
be re-run on a finished run folder, e.g. to add a zoo family):

    python -m imgcheck.trainer.detector_stage --run runs/NAME [--lofo] [--onnx-colorizer F]

1. build the zoo from the run's training photos and generator snapshots (`trainer.zoo`),
2. colorize + degrade + featurize once into RUN/zoo/ (`trainer.zoo_data`; resumable),
3. optionally the leave-one-family-out table (`trainer.lofo`) -> RUN/lofo.json, RUN/lofo.md,
4. fit the shipped head on all families, calibrate its threshold on the real validation
   photos (clean + 4:2:0), and write it into checkpoints/final.pt for `imgcheck export`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from imgcheck.trainer.config import TrainConfig, TrainError
from imgcheck.trainer.data import Split, load_rgb, to_tensor
from imgcheck.trainer.lofo import ZooData, fit_shipped, markdown_table, run_lofo
from imgcheck.trainer.nets import ColorizerConfig
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
) -> dict[str, Any]:
    """`only`: precompute just these families (the rest later); `fit=False`: stop after the zoo."""
    run_dir = Path(run_dir)
    cfg = TrainConfig.from_dict(load_json(run_dir / "config.json")["config"])
    split = Split.from_dict(load_json(run_dir / "split.json"))
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    gcfg = asdict(
        ColorizerConfig(cfg.g_base, cfg.g_depth, cfg.g_max_channels, cfg.g_head, cfg.g_temperature)
    )
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
    if missing or not (zoo_dir / "val" / "real.npz").exists():
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
    if lofo:
        t1 = time.time()
        table = run_lofo(data, say=say)
        save_json({"table": table, "families": data.families}, run_dir / "lofo.json")
        (run_dir / "lofo.md").write_text(markdown_table(table) + "\n", encoding="utf-8")
        result["lofo_s"] = time.time() - t1
        result["lofo"] = table
    det, threshold, info = fit_shipped(data, cfg.fpr)
    rule = (
        f"score >= threshold means colorized; threshold = the smallest value that flags at most "
        f"{cfg.fpr:.2%} of the {info['n_real_calibration']} real validation images (clean and "
        f"4:2:0 re-encoded; view tiles {spec.crop} px at max_side {spec.max_side}, logit mean)"
    )
    final_path = run_dir / "checkpoints" / "final.pt"
    final = torch.load(final_path, map_location="cpu", weights_only=True)
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
    if lofo:
        metrics["lofo"] = result["lofo"]
    final["metrics"] = metrics
    save_torch(final, final_path)
    save_json(info, run_dir / "detector.json")
    say(
        f"detector: threshold {threshold:.4f}; real flagged clean {info['real_flagged_clean']:.3f}, "
        f"4:2:0 {info['real_flagged_420']:.3f}; wrote {final_path}"
    )
    result.update(info)
    return result


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
        )
    except (TrainError, FileNotFoundError, KeyError) as exc:
        print(f"imgcheck train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
