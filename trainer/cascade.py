"""Calibrating the scan cascade (`imgcheck.cascade`): when may a few tiles decide an image?

At scan time an image's tiles are scored in `tile_order`, stage by stage; after `k` tiles an
image whose partial score (the view's aggregate over those tiles) is below the stage threshold
stops as real. Each threshold here is the largest value that lets >= `keep` (99.5 %) of the
shipped detector's detections (at its threshold) through, in every zoo family and validation
variant (clean; JPEG q75 + 0.5x) — so the cascade loses at most 0.5 % of what the detector
finds in any family. The real photos it flags are not protected on purpose: stopping one of
those only lowers the false-positive rate.

Everything is computed from the zoo's stored tile features (RUN/zoo/val), through the same
`view.aggregate` as scan; `measure` reports what the cascade keeps, costs and changes, and
`split_half` does so on photos the thresholds were not chosen on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from imgcheck.cascade import stops, tile_order
from imgcheck.metrics import roc_auc
from imgcheck.trainer.detector_head import ForensicDetector
from imgcheck.trainer.lofo import ZooData
from imgcheck.view import aggregate

KEEP = 0.995
# Log-odds below the lowest kept partial score (see `calibrate`). It was 1.0, chosen on run v2,
# whose head was trained on hard targets and gave tiles logits of +-10 and more; the smoothed
# targets of `detector_head.LABEL_SMOOTHING` bound a tile near +-1.7, so one log-odds unit had
# become a far wider margin than intended (run v6: 32.7 % of real photos stopped vs 63.4 % at
# 0.5). At 0.5 the AUC bound below is what binds, and on held-out halves (3 splits) every
# family keeps 100 % of its detections.
MARGIN = 0.5
AUC_TOL = 0.004  # most a family's AUC may move (issue 12 asks <= 0.005 of --no-cascade)
AUC_STEP = 0.25  # log-odds a stage threshold is lowered by until AUC_TOL holds
# Tiles scored before each stop. (6,) from run v2 to run v18's release; (2, 4, 6, 8) since round
# 2, stop 21: on run v18's head (read back from its graph, `trainer.recascade`) real validation
# photos score 8.14 of 12.46 tiles against 9.11, the same detections kept (all, and all on
# held-out halves), and `bench_cascade.py` measured the scan 1.07x as fast (MODEL_CARD.md).
STAGES = (2, 4, 6, 8)

Tiles = list[np.ndarray]  # per image: tile probabilities in tile_order
Groups = dict[str, dict[str, Tiles]]  # family (or "real") -> variant -> images


@torch.no_grad()
def ordered_tiles(det: ForensicDetector, d: dict[str, np.ndarray], variant: str) -> Tiles:
    """Each image's tile probabilities, in the order scan scores them."""
    probs = torch.sigmoid(det.logits_from_features(torch.from_numpy(d["feats"])))
    probs = probs.double().numpy()
    out = []
    for row in np.flatnonzero(d["variant"] == variant):
        p = probs[d["image"] == row]
        out.append(p[tile_order(len(p))])
    return out


def val_tiles(det: ForensicDetector, data: ZooData) -> Groups:
    groups: Groups = {"real": {v: ordered_tiles(det, data.val_real, v) for v in ("clean", "q75", "420")}}
    for fam in data.families:
        groups[fam] = {v: ordered_tiles(det, data.val[fam], v) for v in ("clean", "q75")}
    return groups


def run_cascade(
    images: Tiles, stages: list[tuple[int, float]], how: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What scan reports per image: score, tiles scored, and whether a stage stopped it."""
    scores, cost, stopped = [], [], []
    for p in images:
        for k, t in stages:
            if stops(p, len(p), k, t, how):
                scores.append(aggregate(p[:k], how))
                cost.append(k)
                stopped.append(True)
                break
        else:
            scores.append(aggregate(p, how))
            cost.append(len(p))
            stopped.append(False)
    return np.array(scores), np.array(cost), np.array(stopped)


def calibrate(
    groups: Groups,
    threshold: float,
    how: str,
    stages: tuple[int, ...] = STAGES,
    keep: float = KEEP,
    photos: np.ndarray | None = None,
    margin: float = MARGIN,
) -> list[tuple[int, float]]:
    """Stage thresholds; `photos`: a mask of the validation photos to calibrate on.

    `margin` (in log-odds) lowers each threshold below the lowest kept partial score: the
    validation photos are few (153), and without a margin photos outside them kept only
    95.6-98.6 % of detections (split-half, run v2). Keeping detections is not all: a stopped
    image reports its partial score, which moves a family's AUC; the thresholds are lowered
    further, `AUC_STEP` at a time, until no family's AUC moves by more than `AUC_TOL`."""
    out: list[tuple[int, float]] = []
    for k in stages:
        t = threshold
        for fam, variants in groups.items():
            if fam == "real":
                continue
            for images in variants.values():
                chosen = [
                    p
                    for i, p in enumerate(images)
                    if (photos is None or photos[i]) and len(p) > k
                    and aggregate(p, how) >= threshold
                ]
                if not chosen:
                    continue
                partial = np.sort([aggregate(p[:k], how) for p in chosen])
                t = min(t, float(partial[math.floor(len(partial) * (1.0 - keep) + 1e-9)]))
        t = _lower(t, margin)
        # Strictly inside (0, 1) as a manifest threshold must be; never above the detector's.
        out.append((k, min(max(t, 1e-6), threshold)))
    while out[0][1] > 1e-6:
        m = measure(groups, out, threshold, how, photos=photos)
        if summary(m)["max_auc_change"] <= AUC_TOL:
            break
        out = [(k, max(_lower(t, AUC_STEP), 1e-6)) for k, t in out]
    return out


def _lower(t: float, log_odds: float) -> float:
    """`t` moved `log_odds` down on the logit scale (0 and 1 stay where they are)."""
    return 1.0 / (1.0 + math.exp(-(math.log(t / (1.0 - t)) - log_odds))) if 0 < t < 1 else t


def measure(
    groups: Groups,
    stages: list[tuple[int, float]],
    threshold: float,
    how: str,
    photos: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per family: detections kept, AUC and flagged share with and without the cascade; for
    the real photos: tiles scored per image, share stopped early, false positives."""

    def pick(images: Tiles) -> Tiles:
        return images if photos is None else [p for i, p in enumerate(images) if photos[i]]

    real: dict[str, Any] = {}
    real_scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for v, images in groups["real"].items():
        images = pick(images)
        full = np.array([aggregate(p, how) for p in images])
        got, cost, stopped = run_cascade(images, stages, how)
        real_scores[v] = (full, got)
        real[v] = {
            "tiles_per_image": float(cost.mean()),
            "tiles_without_cascade": float(np.mean([len(p) for p in images])),
            "stopped": float(stopped.mean()),
            "fpr": float(np.mean(full >= threshold)),
            "fpr_cascade": float(np.mean(got >= threshold)),
        }
    families: dict[str, Any] = {}
    for fam, variants in groups.items():
        if fam == "real":
            continue
        row: dict[str, float] = {}
        for v, images in variants.items():
            images = pick(images)
            full = np.array([aggregate(p, how) for p in images])
            got, _, _ = run_cascade(images, stages, how)
            hit = full >= threshold
            rf, rg = real_scores[v]
            labels = np.r_[np.zeros(len(rf)), np.ones(len(full))]
            row[f"kept_{v}"] = float(np.mean(got[hit] >= threshold)) if hit.any() else 1.0
            row[f"auc_{v}"] = roc_auc(labels, np.r_[rf, full])
            row[f"auc_{v}_cascade"] = roc_auc(labels, np.r_[rg, got])
        families[fam] = row
    return {"stages": [list(s) for s in stages], "real": real, "families": families}


def split_half(
    groups: Groups,
    threshold: float,
    how: str,
    stages: tuple[int, ...] = STAGES,
    seed: int = 0,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Calibrate on a random half of the validation photos, measure on the other, and swap:
    the kept share a catalog's unseen photos can expect."""
    n = len(groups["real"]["clean"])
    half = np.random.default_rng(seed).permutation(n) < n // 2
    worst, results = 1.0, []
    for part in (half, ~half):
        chosen = calibrate(groups, threshold, how, stages, photos=part, margin=margin)
        m = measure(groups, chosen, threshold, how, photos=~part)
        worst = min(
            [worst]
            + [r[k] for r in m["families"].values() for k in r if k.startswith("kept_")]
        )
        results.append(m)
    return {"worst_kept": worst, "halves": results}


def summary(m: dict[str, Any]) -> dict[str, float]:
    """The numbers the model card and the manifest quote."""
    fams = m["families"].values()
    return {
        "worst_kept": min(r[k] for r in fams for k in r if k.startswith("kept_")),
        "max_auc_change": max(
            abs(r[f"auc_{v}"] - r[f"auc_{v}_cascade"]) for r in fams for v in ("clean", "q75")
        ),
        "real_tiles_per_image": m["real"]["clean"]["tiles_per_image"],
        "real_tiles_without": m["real"]["clean"]["tiles_without_cascade"],
        "real_stopped": m["real"]["clean"]["stopped"],
        "fpr_change": max(abs(r["fpr"] - r["fpr_cascade"]) for r in m["real"].values()),
    }


def markdown(measured: dict[str, Any], held_out: dict[str, Any], threshold: float) -> str:
    """RUN/cascade.md: the per-family table of what the cascade keeps and changes."""
    stages = ", ".join(f"stop after {k} tiles below {t:.4f}" for k, t in measured["stages"])
    real = measured["real"]
    lines = [
        f"Stages: {stages} (detector threshold {threshold:.4f}).",
        "",
        "| real photos | tiles scored per image | without cascade | stopped early "
        "| FPR | FPR with cascade |",
        "|---|---|---|---|---|---|",
    ]
    for v, r in real.items():
        lines.append(
            f"| {v} | {r['tiles_per_image']:.2f} | {r['tiles_without_cascade']:.2f} "
            f"| {r['stopped']:.1%} | {r['fpr']:.3f} | {r['fpr_cascade']:.3f} |"
        )
    lines += [
        "",
        "| family | detections kept (clean) | kept (q75) | AUC | AUC with cascade "
        "| AUC q75 | AUC q75 with cascade |",
        "|---|---|---|---|---|---|---|",
    ]
    for fam, r in measured["families"].items():
        lines.append(
            f"| {fam} | {r['kept_clean']:.3f} | {r['kept_q75']:.3f} | {r['auc_clean']:.3f} "
            f"| {r['auc_clean_cascade']:.3f} | {r['auc_q75']:.3f} | {r['auc_q75_cascade']:.3f} |"
        )
    lines += [
        "",
        f"Calibrated on one half of the validation photos and measured on the other (both "
        f"ways): worst share of a family's detections kept {held_out['worst_kept']:.3f}.",
    ]
    return "\n".join(lines)
