"""The LOFO table over several head seeds: how much of a difference is the seed's.

One LOFO table is one draw. The head's seed (its initialisation and the tiles each step
samples) moves a held-out family's AUC by about 0.01 on the weak families (run v19's zoo:
oracle_lowres 0.863-0.871 over seeds 0-2), as much as most feature changes measured. A
change is worth shipping when its per-family mean over seeds moves by more than that spread,
so compare feature sets here, each column from the same zoo:

    python -m imgcheck.trainer.lofo_spread --run runs/NAME --seeds 0 1 2 \
        --without fit_resid@1 fit_ratio@1 flat_grad@1 edge_coupling@1

`--without` masks features out of the head's input (`ForensicConfig.keep`), so no zoo is
recomputed; the graph still computes them, so it measures what the features are worth, not
what dropping them saves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from imgcheck.trainer.detector_head import ForensicConfig
from imgcheck.trainer.forensics import FEATURES
from imgcheck.trainer.lofo import HEAD_STEPS, ZooData, run_lofo

Spread = dict[str, dict[str, list[float]]]  # config -> family -> AUC per seed


def lofo_spread(
    data: ZooData,
    configs: dict[str, ForensicConfig],
    seeds: tuple[int, ...] = (0, 1, 2),
    steps: int = HEAD_STEPS,
    say: Any = print,
) -> Spread:
    """config name -> held-out family -> clean AUC per seed (in `seeds` order)."""
    out: Spread = {name: {f: [] for f in data.families} for name in configs}
    for seed in seeds:
        table = run_lofo(data, configs, steps=steps, say=lambda *_: None, seed=seed)
        for name, fams in table.items():
            for f, m in fams.items():
                out[name][f].append(m["auc_clean"])
            aucs = [m["auc_clean"] for m in fams.values()]
            say(f"seed {seed} {name}: mean {np.mean(aucs):.4f} min {np.min(aucs):.4f}")
    return out


def spread_markdown(spread: Spread) -> str:
    """Per family and config: mean AUC over seeds and its range; then the mean and the
    worst family, each over seeds (a per-seed statistic, then its mean and range)."""
    names = list(spread)
    fams = list(spread[names[0]])
    lines = [
        "| held-out family | " + " | ".join(f"{n} AUC mean (range)" for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]

    def cell(v: np.ndarray) -> str:
        return f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})"

    for f in fams:
        lines.append(f"| {f} | " + " | ".join(cell(np.array(spread[n][f])) for n in names) + " |")
    for stat, agg in (("mean", np.mean), ("min", np.min)):
        per_seed = {n: agg(np.array([spread[n][f] for f in fams]), axis=0) for n in names}
        lines.append(f"| **{stat}** | " + " | ".join(cell(per_seed[n]) for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgcheck.trainer.lofo_spread")
    ap.add_argument("--run", required=True, type=Path, help="a run folder with its zoo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--without", nargs="*", default=[], help="features masked out (a column)")
    ap.add_argument("--steps", type=int, default=HEAD_STEPS)
    ap.add_argument("--out", type=Path, help="also write the spread as JSON here")
    args = ap.parse_args(argv)
    unknown = [f for f in args.without if f not in FEATURES]
    zoo = args.run / "zoo"
    if unknown or not zoo.is_dir():
        what = f"unknown features {unknown}" if unknown else f"{zoo} not found: run the zoo"
        print(f"imgcheck lofo_spread: error: {what}", file=sys.stderr)
        return 2
    configs = {"full": ForensicConfig()}
    if args.without:
        configs["without"] = ForensicConfig(
            keep=tuple(f for f in FEATURES if f not in args.without)
        )
    spread = lofo_spread(ZooData.load(zoo), configs, tuple(args.seeds), args.steps)
    print(spread_markdown(spread))
    if args.out:
        args.out.write_text(
            json.dumps({"seeds": args.seeds, "without": args.without, "auc": spread})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
