"""Does the head want more training fakes? The LOFO table against photos per family (MODEL_CARD
"More fakes per family").

A run's zoo holds, per family, the training photos that family colorized (`zoo_per_photo`
families drawn per photo) and their real twins. This refits the LOFO table's "full" heads
(`lofo.HEAD_STEPS` unless told, seeds as given) on a random share of each family's photos, fakes and twins
together, and prints held-out AUC per family and its mean. A table that falls as the share
shrinks says that more photos per family should lift it. Round 2, stop 25, from the
repository root in the dev venv (about 1 minute per share and seed on 2 cores):
`python docs/model_card/probes/data_curve.py RUN/zoo --shares 1.0,0.5,0.33 --seeds 0,1`.
The other way, more photos per family: a copy of the run with `zoo_per_photo` raised in its
config.json and its training family files deleted, `python -m imgcheck.trainer.detector_stage
--run COPY --zoo-only` (the stage computes the missing files), then this on COPY/zoo at share 1;
`--steps` and `--hidden` try a longer fit or a wider head on the larger zoo.
"""

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from imgcheck.trainer.detector_head import fit_head
from imgcheck.trainer.lofo import ABLATIONS, HEAD_STEPS, ZooData, evaluate_family, new_head


def subsample(data: ZooData, share: float, seed: int) -> ZooData:
    """The same zoo with only `share` of each family's training photos (fakes and twins)."""
    rng = np.random.default_rng(seed)
    train = {}
    for fam, d in data.train.items():
        photos = np.unique(d["photo"])
        kept = rng.choice(photos, size=max(1, round(len(photos) * share)), replace=False)
        rows = np.flatnonzero(np.isin(d["photo"], kept))
        remap = np.full(len(d["photo"]), -1)
        remap[rows] = np.arange(len(rows))
        tiles = np.isin(d["image"], rows)
        train[fam] = {
            **d,
            "photo": d["photo"][rows],
            "label": d["label"][rows],
            "variant": d["variant"][rows],
            "feats": d["feats"][tiles],
            "image": remap[d["image"][tiles]],
        }
    return ZooData(train, data.val_real, data.val, data.train_real)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo", type=Path, help="a run's zoo folder")
    ap.add_argument("--shares", default="1.0", help="comma-separated shares of photos kept")
    ap.add_argument("--seeds", default="0", help="comma-separated head (and subsample) seeds")
    ap.add_argument("--steps", type=int, default=HEAD_STEPS)
    ap.add_argument("--hidden", type=int, default=ABLATIONS["full"].hidden)
    args = ap.parse_args()
    data = ZooData.load(args.zoo)
    cfg = replace(ABLATIONS["full"], hidden=args.hidden)
    for share in (float(x) for x in args.shares.split(",")):
        for seed in (int(x) for x in args.seeds.split(",")):
            d = subsample(data, share, seed) if share < 1 else data
            t0 = time.time()
            aucs = {}
            for fam in d.families:
                det = new_head(cfg, seed)
                real, fakes = d.training_tiles(exclude=fam)
                fit_head(det, real, fakes, steps=args.steps, seed=seed)
                aucs[fam] = evaluate_family(det, d, fam)["auc_clean"]
            v = np.array(list(aucs.values()))
            cells = " ".join(f"{k}={a:.3f}" for k, a in aucs.items())
            print(
                f"share {share} seed {seed} steps {args.steps} hidden {args.hidden} "
                f"mean {v.mean():.4f} min {v.min():.3f} ({time.time() - t0:.0f} s) {cells}",
                flush=True,
            )


if __name__ == "__main__":
    main()
