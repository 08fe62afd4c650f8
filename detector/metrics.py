"""Binary detection metrics for "is this image colorized?", numpy only.

Used by `imgcheck evaluate` (runtime, so no torch and no scipy/sklearn) and by the trainer to
calibrate and report the detector, so the numbers in the model card and the numbers a user gets
from `imgcheck evaluate` come from the same code.

Conventions, everywhere in this module:
- `labels`: 1 = colorized (fake, the positive class), 0 = real colour photo.
- `scores`: higher = more likely colorized (the detector's probability).
- Decision rule: `score >= threshold` means "colorized". This is the same rule scan applies.
- A metric that needs both classes returns `nan` when one is missing (never a made-up 0 or 1);
  `binary_report` says why in its `notes` entry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "average_precision",
    "binary_report",
    "roc_auc",
    "threshold_for_fpr",
    "threshold_rule",
    "tpr_at_fpr",
]


def _check(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert; a silent NaN score or a label 2 would corrupt every metric."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if y.size and not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (real) or 1 (colorized)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (drop images that failed before computing metrics)")
    return y.astype(bool), s


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve = P(score_fake > score_real) + 0.5 * P(tie).

    Computed as the Mann-Whitney U statistic with mid-ranks, so ties between a fake and a real
    score count one half (the trapezoidal ROC area), in O(n log n). nan unless both classes occur.
    """
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Mid-ranks (1-based) for tied runs.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks = np.empty_like(s)
    ranks[order] = np.repeat(mid, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision = sum over thresholds of (R_k - R_{k-1}) * P_k (step-wise, no interpolation).

    Thresholds are the distinct scores, so tied images enter together (as in scikit-learn's
    `average_precision_score`). nan when there is no colorized image (recall is undefined); with
    only colorized images every threshold has precision 1, so AP = 1.
    """
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    seen = np.arange(1, s.size + 1)
    # Last index of each run of equal scores: the operating points of the ">= t" rule.
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp, seen = tp[last], seen[last]
    precision = tp / seen
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_for_fpr(real_scores: Any, fpr: float) -> float:
    """The smallest threshold t such that at most `fpr` of the real images have score >= t.

    Exact rule: with n real scores and k = floor(fpr * n) allowed false positives, sort the real
    scores in descending order s_1 >= s_2 >= ... >= s_n. Then t = the smallest float64 strictly
    greater than s_{k+1}; every real score >= t is one of s_1..s_k, so the false-positive rate
    on these scores is <= k/n <= fpr (less when s_k ties s_{k+1}: tied images are never split).
    If k >= n (fpr = 1) every real image may be flagged and t = min(real_scores).

    The threshold sits right above a real score, so a re-computation of that image's score with
    a tiny numerical difference (e.g. ONNX vs torch, about 1e-6) can flip it: the rate is exact
    on these scores and only approximately so on others, like every calibrated threshold.
    """
    s = np.asarray(real_scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise ValueError("threshold_for_fpr needs at least one real score")
    if not np.all(np.isfinite(s)):
        raise ValueError("real scores must be finite")
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    n = s.size
    k = math.floor(fpr * n + 1e-9)  # tolerance: 0.05 * 100 must give 5, not 4.999...
    if k >= n:
        return float(s.min())
    desc = np.sort(s)[::-1]
    return float(np.nextafter(desc[k], np.inf))


def threshold_rule(fpr: float, n_real: int) -> str:
    """The one-line description of `threshold_for_fpr` stored as `threshold_rule` in final.pt and
    the manifest, so the model card says exactly how its threshold was chosen."""
    return (
        f"threshold_for_fpr: smallest t with at most {fpr:g} of {n_real} validation real images "
        "scoring >= t (k = floor(fpr * n) false positives allowed; score >= t means colorized)"
    )


def tpr_at_fpr(labels: Any, scores: Any, fpr: float) -> float:
    """Share of colorized images caught at the threshold `threshold_for_fpr(real scores, fpr)`.

    An operating point that really exists on these scores (no ROC interpolation), so the reported
    TPR is achievable with a concrete threshold. nan unless both classes occur.
    """
    y, s = _check(labels, scores)
    if y.all() or not y.any():
        return math.nan
    t = threshold_for_fpr(s[~y], fpr)
    return float(np.mean(s[y] >= t))


def binary_report(labels: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """All detector numbers at once, at a given threshold (score >= threshold = colorized).

    Keys: auc, ap, acc_real (share of real images kept as real = 1 - FPR), acc_fake (share of
    colorized images flagged = TPR), hter (half total error rate = (FPR + FNR) / 2, i.e. one
    minus balanced accuracy), tpr_at_fpr1, tpr_at_fpr5, n_real, n_fake, threshold, and notes
    (a list of plain-language reasons for any nan). Values are floats (nan when undefined) and
    ints for the counts, so the dict is JSON-serialisable after nan -> null.
    """
    y, s = _check(labels, scores)
    n_fake = int(y.sum())
    n_real = int(y.size - n_fake)
    notes: list[str] = []
    if n_real == 0:
        notes.append("no real images: acc_real, hter, auc and tpr_at_fpr are undefined (nan)")
    if n_fake == 0:
        notes.append(
            "no colorized images: acc_fake, hter, auc, ap and tpr_at_fpr are undefined (nan)"
        )
    for fpr, key in ((0.01, "tpr_at_fpr1"), (0.05, "tpr_at_fpr5")):
        if 0 < n_real < round(1 / fpr) and n_fake:
            notes.append(
                f"fewer than {round(1 / fpr)} real images: {key} is the TPR at zero false positives"
            )
    flagged = s >= threshold
    acc_real = float(np.mean(~flagged[~y])) if n_real else math.nan
    acc_fake = float(np.mean(flagged[y])) if n_fake else math.nan
    return {
        "auc": roc_auc(y, s),
        "ap": average_precision(y, s),
        "acc_real": acc_real,
        "acc_fake": acc_fake,
        "hter": 1.0 - (acc_real + acc_fake) / 2.0,
        "tpr_at_fpr1": tpr_at_fpr(y, s, 0.01),
        "tpr_at_fpr5": tpr_at_fpr(y, s, 0.05),
        "n_real": n_real,
        "n_fake": n_fake,
        "threshold": float(threshold),
        "notes": notes,
    }
