"""Which draws of the three weakest held-out families are missed? (MODEL_CARD "What the weak
families miss").

Every validation fake of `oracle_lowres`, `oracle_tone` and `tint` was made with draws from
its own generator (`zoo_data._val_item`: `item_rng(seed, 8, crc32(family), index)`). This
replays those draws in the order each family's `colorize` takes them, so every stored fake gets
its mode (working size and upsampler; hue rotation, saturation scale or quantisation; a
constant cast or a gradient map), then fits the LOFO head without that family (the table's
"full" head, seed 0) and reports, per mode, the AUC against the real validation photos (clean)
and the share caught at the head's 1 % FPR threshold. `--check N` first re-colorizes N
validation photos with the family's real code and compares their features with the stored
ones, which proves the replay. Round 2, stop 25, from the repository root in the dev venv:
`python docs/model_card/probes/weak_modes.py /work/runs/v21 --check 2`.
"""

import argparse
import math
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from imgcheck.metrics import roc_auc, threshold_for_fpr
from imgcheck.trainer.config import TrainConfig
from imgcheck.trainer.data import Split, item_rng, load_rgb
from imgcheck.trainer.detector_head import fit_head
from imgcheck.trainer.detector_stage import detector_view
from imgcheck.trainer.lofo import ABLATIONS, HEAD_STEPS, ZooData, new_head, variant_scores
from imgcheck.trainer.runs import load_json
from imgcheck.trainer.zoo import oracle
from imgcheck.trainer.zoo._protocol import UPSAMPLERS, WORK_SIZES
from imgcheck.trainer.zoo_data import VAL_DEGRADE, colorize_pil, view_features


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]  # as `_protocol.draw`


def lowres_mode(rng: np.random.Generator) -> str:
    size = _pick(rng, WORK_SIZES)
    return f"{size} px, {_pick(rng, UPSAMPLERS)}"


def tone_mode(rng: np.random.Generator) -> str:
    res = "full res" if rng.random() < 0.3 else None
    if res is None:
        res = f"{_pick(rng, (256, 384, 512))} px"
        _pick(rng, UPSAMPLERS)
    kind = int(rng.integers(3))
    if kind == 0:
        angle = abs(rng.uniform(30, 150))
        rng.random()
        band = "30-70" if angle < 70 else "70-110" if angle < 110 else "110-150"
        return f"hue rotated {band} deg"
    if kind == 1:
        return "desaturated 0.3-0.6x" if rng.random() < 0.5 else "saturated 1.5-2.2x"
    step = rng.uniform(8, 20)
    return f"quantised, step {'8-14' if step < 14 else '14-20'}"


def tint_mode(rng: np.random.Generator) -> str:
    if rng.random() < 0.4:
        rng.uniform(0, 2 * math.pi)
        chroma = rng.uniform(8, 35)
        return f"constant cast, chroma {'8-20' if chroma < 20 else '20-35'}"
    return "gradient map"


MODES = {"oracle_lowres": lowres_mode, "oracle_tone": tone_mode, "tint": tint_mode}
BUILDERS = {"oracle_lowres": oracle.build_lowres, "oracle_tone": oracle.build_tone}


def check(run: Path, family: str, data: ZooData, n: int, seed: int) -> float:
    """Largest feature difference between stored fakes and fakes made again (clean)."""
    cfg = TrainConfig.from_dict(load_json(run / "config.json")["config"])
    val = Split.from_dict(load_json(run / "split.json")).paths("val")
    spec = detector_view(cfg)
    fn = BUILDERS[family](None)
    d = data.val[family]
    worst = 0.0
    for index in range(n):
        real = load_rgb(val[index], cfg.max_side)
        rng = item_rng(seed, 8, zlib.crc32(family.encode()), index)
        again = view_features(VAL_DEGRADE["clean"].apply(colorize_pil(fn, real, rng)), spec)
        row = np.flatnonzero((d["photo"] == index) & (d["variant"] == "clean"))[0]
        stored = d["feats"][d["image"] == row]
        worst = max(worst, float(np.abs(again - stored).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--check", type=int, default=0, help="photos to re-colorize per family")
    args = ap.parse_args()
    data = ZooData.load(args.run / "zoo")
    seed = int(load_json(args.run / "config.json")["config"]["seed"])
    for family, mode_of in MODES.items():
        if args.check and family in BUILDERS:
            worst = check(args.run, family, data, args.check, seed)
            print(f"{family}: {args.check} fakes made again, features within {worst:.2e}")
        det = new_head(ABLATIONS["full"], 0)
        real, fakes = data.training_tiles(exclude=family)
        fit_head(det, real, fakes, steps=HEAD_STEPS, seed=0)
        real_s = variant_scores(det, data.val_real, "clean")
        t = threshold_for_fpr(real_s, 0.01)
        d = data.val[family]
        fake_s = variant_scores(det, d, "clean")
        photos = d["photo"][d["variant"] == "clean"]
        by_mode: dict[str, list[float]] = defaultdict(list)
        for p, s in zip(photos, fake_s, strict=True):
            by_mode[mode_of(item_rng(seed, 8, zlib.crc32(family.encode()), int(p)))].append(s)
        auc = roc_auc(np.r_[np.zeros(len(real_s)), np.ones(len(fake_s))], np.r_[real_s, fake_s])
        print(f"{family} held out: AUC {auc:.3f}, caught {np.mean(fake_s >= t):.3f}")
        for mode, s in sorted(by_mode.items()):
            s = np.asarray(s)
            a = roc_auc(np.r_[np.zeros(len(real_s)), np.ones(len(s))], np.r_[real_s, s])
            print(f"  {mode:32s} n {len(s):3d}  AUC {a:.3f}  caught {np.mean(s >= t):.3f}")


if __name__ == "__main__":
    main()
