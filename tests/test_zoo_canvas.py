"""Product-shot training pairs: a share of the zoo's pairs is pasted onto a flat canvas."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from imgcheck.trainer.canvas import on_canvas  # noqa: E402
from imgcheck.trainer.zoo_data import CANVAS_SHARE, Degrade  # noqa: E402

pytestmark = pytest.mark.torch


def _photo() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(20, 230, (60, 80, 3), dtype=np.uint8))


def test_a_share_of_draws_is_a_product_shot_and_the_rest_is_as_before() -> None:
    draws = [Degrade.draw(np.random.default_rng([7, i])) for i in range(3000)]
    on = [d for d in draws if d.canvas]
    assert abs(len(on) / len(draws) - CANVAS_SHARE) < 0.03
    assert all(0.3 <= d.canvas <= 0.8 for d in on)
    assert {255, 0} <= {d.background for d in on} and any(0 < d.background < 255 for d in on)
    assert any(d.oval for d in on) and any(not d.oval for d in on)
    # The canvas is drawn after everything else: the other fields keep the values that the
    # same rng gave before it existed (checked here on the first of them, the scale).
    for i in range(50):
        d = Degrade.draw(np.random.default_rng([7, i]))
        rng = np.random.default_rng([7, i])
        scale = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.6 else 1.0
        assert d.scale == scale


@pytest.mark.parametrize("oval", [False, True])
def test_the_photo_sits_centred_on_a_flat_canvas(oval: bool) -> None:
    photo = _photo()
    out = np.asarray(on_canvas(photo, 0.5, 255, oval))
    assert out.shape == (120, 160, 3)
    assert (out[:20] == 255).all() and (out[:, :30] == 255).all()  # the margins
    centre = out[30:90, 40:120]
    assert np.array_equal(centre[25:35, 35:45], np.asarray(photo)[25:35, 35:45])
    # A rectangle keeps the photo's corners; an oval cut-out lets the canvas show there.
    assert (centre[0, 0] == 255).all() == oval
    plain = Degrade().apply(photo)
    assert plain.size == photo.size  # no canvas: the image is not touched by it
