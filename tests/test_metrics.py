"""Detector metrics against brute-force definitions, image metrics against published values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imgcheck.metrics import (
    average_precision,
    binary_report,
    roc_auc,
    threshold_for_fpr,
    threshold_rule,
    tpr_at_fpr,
)

# ---------------------------------------------------------------- detector metrics (numpy)


def _auc_pairs(labels: np.ndarray, scores: np.ndarray) -> float:
    """Brute force over all (fake, real) pairs: win = 1, tie = 1/2."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def _ap_bruteforce(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP from its definition: sweep each distinct threshold, sum (delta recall) * precision."""
    n_pos = labels.sum()
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        flagged = scores >= t
        tp = (labels[flagged] == 1).sum()
        recall, precision = tp / n_pos, tp / flagged.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ap_match_bruteforce_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    labels[:2] = [0, 1]
    # Coarse scores, so there are many ties within and across classes.
    scores = np.round(rng.random(60) * 0.5 + 0.3 * labels, 1)
    assert roc_auc(labels, scores) == pytest.approx(_auc_pairs(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        _ap_bruteforce(labels, scores), abs=1e-12
    )


def test_auc_extremes_and_all_tied() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert average_precision([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    # All tied: one operating point, precision = prevalence.
    assert average_precision([0, 1, 0, 0], [0.5] * 4) == 0.25


def test_single_class_gives_nan_with_a_note() -> None:
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert math.isnan(roc_auc([0, 0], [0.2, 0.3]))
    assert math.isnan(average_precision([0, 0], [0.2, 0.3]))
    assert average_precision([1, 1], [0.2, 0.3]) == 1.0
    assert math.isnan(tpr_at_fpr([1, 1], [0.2, 0.3], 0.05))
    report = binary_report([0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5)
    assert report["acc_real"] == pytest.approx(2 / 3)
    assert math.isnan(report["acc_fake"]) and math.isnan(report["hter"])
    assert report["n_fake"] == 0 and report["n_real"] == 3
    assert any("no colorized images" in note for note in report["notes"])


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError):
        threshold_for_fpr([], 0.01)


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.1, 0.33, 0.5, 1.0])
def test_threshold_for_fpr_is_the_smallest_valid_threshold(fpr: float) -> None:
    rng = np.random.default_rng(7)
    real = np.round(rng.random(100), 2)  # ties on purpose
    t = threshold_for_fpr(real, fpr)
    assert np.mean(real >= t) <= fpr + 1e-12
    # Any smaller candidate (each real score, or just below t) lets too many real images through.
    smaller = [s for s in np.unique(real) if s < t] + [np.nextafter(t, -np.inf)]
    if fpr < 1.0:
        assert all(np.mean(real >= c) > fpr for c in smaller)


def test_threshold_for_fpr_exact_rule() -> None:
    real = np.arange(100) / 100.0  # 0.00 .. 0.99
    # 5% of 100 -> 5 allowed false positives: 0.95..0.99 flagged, 0.94 not.
    t = threshold_for_fpr(real, 0.05)
    assert 0.94 < t <= 0.95 and np.sum(real >= t) == 5
    assert threshold_for_fpr(real, 0.0) > 0.99
    assert "0.05 of 100" in threshold_rule(0.05, 100)


def test_tpr_at_fpr_and_report_against_counts() -> None:
    real = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    fake = np.array([0.35, 0.5, 0.95, 0.8])
    labels = np.r_[np.zeros(5), np.ones(4)]
    scores = np.r_[real, fake]
    # fpr 0.2 -> one false positive allowed (0.9); threshold just above 0.4.
    assert tpr_at_fpr(labels, scores, 0.2) == pytest.approx(3 / 4)
    # fpr 0.01 -> none allowed; threshold just above 0.9: only 0.95 caught.
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(1 / 4)
    r = binary_report(labels, scores, threshold=0.45)
    assert r["acc_real"] == pytest.approx(4 / 5)
    assert r["acc_fake"] == pytest.approx(3 / 4)
    assert r["hter"] == pytest.approx((1 / 5 + 1 / 4) / 2)
    assert r["auc"] == pytest.approx(_auc_pairs(labels, scores))
    assert r["tpr_at_fpr1"] == pytest.approx(1 / 4)
    assert (r["n_real"], r["n_fake"], r["threshold"]) == (5, 4, 0.45)
    # 5 real images: the 1 % and 5 % operating points are both "zero false positives".
    assert len(r["notes"]) == 2 and all("zero false positives" in n for n in r["notes"])
    big = binary_report(
        np.r_[np.zeros(100), np.ones(3)], np.r_[np.linspace(0, 0.5, 100), [0.9] * 3], 0.5
    )
    assert big["notes"] == []
    # score == threshold counts as colorized.
    assert binary_report([1], [0.45], 0.45)["acc_fake"] == 1.0


# ---------------------------------------------------------------- image metrics (torch)

# Sharma, Wu & Dalal (2005), "The CIEDE2000 Color-Difference Formula: Implementation Notes,
# Supplementary Test Data, and Mathematical Observations", Table 1: all 34 pairs.
SHARMA = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.torch
def test_delta_e2000_matches_sharma_2005_table() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.trainer.colour import delta_e2000

    lab1 = torch.tensor([p[0] for p in SHARMA], dtype=torch.float64).view(-1, 3, 1, 1)
    lab2 = torch.tensor([p[1] for p in SHARMA], dtype=torch.float64).view(-1, 3, 1, 1)
    want = torch.tensor([p[2] for p in SHARMA], dtype=torch.float64)
    got = delta_e2000(lab1, lab2).view(-1)
    assert torch.allclose(got, want, atol=5e-5, rtol=0)
    # Symmetric, zero on identity, and float32 is good enough for image statistics.
    assert torch.allclose(delta_e2000(lab2, lab1).view(-1), got, atol=1e-10)
    assert torch.all(delta_e2000(lab1, lab1) == 0)
    got32 = delta_e2000(lab1.float(), lab2.float()).view(-1).double()
    assert torch.allclose(got32, want, atol=2e-3, rtol=0)


def _images(torch, n: int = 2, size: int = 32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


@pytest.mark.torch
def test_psnr_against_direct_formula() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.trainer.metrics import psnr

    a = _images(torch)
    b = (a + 0.1).clamp(0, 1)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).double()
    assert torch.allclose(psnr(a, b).double(), 10 * torch.log10(1 / mse), atol=1e-4)
    # Uniform error 0.1 everywhere -> exactly 20 dB.
    c = torch.full((1, 3, 8, 8), 0.5)
    assert psnr(c, c + 0.1).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a).tolist() == pytest.approx([100.0, 100.0])


@pytest.mark.torch
def test_ssim_identity_constants_and_ordering() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.trainer.metrics import ssim

    a = _images(torch)
    assert ssim(a, a).tolist() == pytest.approx([1.0, 1.0], abs=1e-9)
    # Two flat images: variance terms vanish, SSIM = (2 m1 m2 + C1) / (m1² + m2² + C1).
    x, y = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)
    c1 = 0.01**2
    want = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(x, y).item() == pytest.approx(want, abs=1e-6)
    # More noise -> lower SSIM; an inverted image is anti-correlated (negative structure term).
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(a.shape, generator=g)
    s_small = ssim(a, (a + 0.05 * noise).clamp(0, 1))
    s_big = ssim(a, (a + 0.3 * noise).clamp(0, 1))
    assert torch.all(s_small > s_big)
    assert torch.all(ssim(a, 1 - a) < 0)


@pytest.mark.torch
def test_colorfulness_grey_zero_and_closed_form() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.trainer.metrics import colorfulness

    grey = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8)
    assert colorfulness(grey).item() == pytest.approx(0.0, abs=1e-9)
    # Half pure red, half pure green: rg = ±255, yb = 127.5 everywhere.
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0, :, :2] = 1.0
    img[0, 1, :, 2:] = 1.0
    want = math.sqrt(255.0**2 + 0.0) + 0.3 * math.sqrt(0.0 + 127.5**2)
    assert colorfulness(img).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.torch
def test_mean_delta_e2000_identity_and_grey_vs_colour() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
    )
    from imgcheck.trainer.colour import delta_e2000, rgb_to_lab
    from imgcheck.trainer.metrics import mean_delta_e2000

    a = _images(torch)
    assert torch.allclose(mean_delta_e2000(a, a), torch.zeros(2), atol=1e-6)
    red, grey = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    grey[:] = 0.5
    single = delta_e2000(
        rgb_to_lab(red[:, :, :1, :1]).double(), rgb_to_lab(grey[:, :, :1, :1]).double()
    )
    assert mean_delta_e2000(red, grey).item() == pytest.approx(single.item(), rel=1e-5)
    assert single.item() > 20
