"""The colour math and window means behind both graphs, against plain definitions.

`guided.box` / `box_valid` are written as k x k average pools (fast in ONNX Runtime) and
`colour.rgb_to_luminance` computes L from Y alone; each must equal the obvious formulation.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from imgcheck.trainer.colour import rgb_to_lab, rgb_to_luminance  # noqa: E402
from imgcheck.trainer.guided import box, box_valid  # noqa: E402

pytestmark = pytest.mark.torch


def brute_mean(x: np.ndarray, r: int, valid: bool) -> np.ndarray:
    """Window mean over (2r+1)^2 at every pixel (clipped at borders) or every inner pixel."""
    h, w = x.shape
    out = np.zeros((h - 2 * r, w - 2 * r) if valid else (h, w))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            ci, cj = (i + r, j + r) if valid else (i, j)
            win = x[max(0, ci - r) : ci + r + 1, max(0, cj - r) : cj + r + 1]
            out[i, j] = win.mean()
    return out


@pytest.mark.parametrize("radius", [1, 2])
def test_window_means_match_their_definition(radius: int) -> None:
    x = np.random.default_rng(radius).normal(5.0, 2.0, (11, 9))
    t = torch.from_numpy(x).float()[None, None]
    got_valid = box_valid(t, radius)[0, 0].double().numpy()
    got_box = box(t, radius)[0, 0].double().numpy()
    np.testing.assert_allclose(got_valid, brute_mean(x, radius, valid=True), atol=1e-5)
    np.testing.assert_allclose(got_box, brute_mean(x, radius, valid=False), atol=1e-5)


def test_luminance_is_the_l_of_lab_including_the_dark_branch() -> None:
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.random((2, 3, 17, 13))).float()
    rgb[0, :, :4] *= 0.02  # below the CIE linear-segment knee (L < 8)
    # Equal up to float32 rounding (1 ulp of L = 100 is 7.6e-6).
    torch.testing.assert_close(rgb_to_luminance(rgb), rgb_to_lab(rgb)[:, :1], rtol=0, atol=2e-5)
