"""Image-quality metrics for colorizers (torch): PSNR, SSIM, colourfulness and CIEDE2000.

All functions take sRGB batches (N, 3, H, W) in [0, 1] and return one value per image (N,),
so the caller chooses how to aggregate (mean over a split, per-image tables, ...).

Why these four: PSNR and SSIM are what colorization papers report, but they reward a timid,
brownish colorizer (the grey image itself already scores high), so the report also gives the
colourfulness of the outputs next to that of real photos (Hasler & Süsstrunk 2003), and the mean
CIEDE2000 difference, the perceptually uniform error (about 1 = just noticeable).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import delta_e2000, rgb_to_lab

__all__ = ["colorfulness", "mean_delta_e2000", "psnr", "ssim"]

_MSE_FLOOR = 1e-10  # identical images give 100 dB, not inf, so means over a split stay finite


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
        raise ValueError(
            f"expected two (N, 3, H, W) batches of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, over all three sRGB channels, peak = 1.

    MSE is floored at 1e-10, so identical images give 100 dB instead of inf.
    """
    _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(_MSE_FLOOR))).to(pred.dtype)


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Structural similarity per image (Wang, Bovik, Sheikh & Simoncelli 2004).

    Per sRGB channel, then averaged over the three channels: for a colorizer that re-attaches
    the input's luminance, SSIM on luminance alone would be ~1 for every method and say nothing.
    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range 1, and "valid"
    filtering (no padding), as in the authors' reference implementation; images smaller than
    the window use a window as large as the smaller side.
    """
    _check_pair(pred, target)
    x, y = pred.double(), target.double()
    size = min(window, x.shape[-2], x.shape[-1])
    g = _gaussian_window(size, sigma, x.dtype)
    c = x.shape[1]
    gh = g.view(1, 1, 1, size).expand(c, 1, 1, size)
    gv = g.view(1, 1, size, 1).expand(c, 1, size, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(dim=1).to(pred.dtype)


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness M on the 0-255 scale, per image.

    rg = R - G, yb = (R + G) / 2 - B; M = sqrt(var_rg + var_yb) + 0.3 * sqrt(mean_rg² + mean_yb²)
    (population std, over all pixels). 0 for a grey image; the authors' scale calls ~15 "slightly",
    ~33 "moderately", ~59 "quite" and ~82+ "highly" colourful.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) batch, got {tuple(rgb.shape)}")
    x = rgb.double() * 255.0
    r, g, b = x.unbind(dim=1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return (std + 0.3 * mean).to(rgb.dtype)


def mean_delta_e2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 difference per image, over pixels (sRGB -> CIELAB D65 via `colour`)."""
    _check_pair(pred, target)
    de = delta_e2000(rgb_to_lab(pred.double()), rgb_to_lab(target.double()))
    return de.flatten(1).mean(dim=1).to(pred.dtype)
