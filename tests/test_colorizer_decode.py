"""The colorizer's decode setting: the gain scales the regression head's chroma, and the
calibration picks the most colourful setting that still beats leaving the photo grey."""

from __future__ import annotations

import pytest

torch = pytest.importorskip(
    "torch", reason="the colorizer decode needs the train extra", exc_type=ModuleNotFoundError
)

from imgcheck.trainer import decode  # noqa: E402
from imgcheck.trainer.nets import ColorizerConfig, UNetColorizer, decode_setting  # noqa: E402

SMALL = dict(base=8, depth=2, max_channels=16, head="regression")


def test_gain_scales_the_regression_chroma_and_nothing_else() -> None:
    torch.manual_seed(0)
    plain = UNetColorizer(ColorizerConfig(**SMALL))
    gained = UNetColorizer(ColorizerConfig(**SMALL, gain=1.75))
    gained.load_state_dict(plain.state_dict())
    L = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(gained(L), 1.75 * plain(L), atol=1e-6)
    assert decode_setting({**SMALL}) == "gain"
    assert decode_setting({**SMALL, "head": "bins"}) == "temperature"


def _metrics(psnr: float, colourful: float, gray: float = 20.0) -> dict[str, float]:
    return {
        "psnr": psnr, "gray_psnr": gray, "colorfulness": colourful, "colorfulness_real": 10.0,
        "chroma": colourful, "chroma_real": 10.0, "delta_e2000": 5.0, "n_images": 1,
    }  # fmt: skip


def test_choose_takes_the_most_colourful_setting_that_beats_grey() -> None:
    results = {1.0: _metrics(21.0, 3.0), 1.5: _metrics(20.5, 5.0), 2.0: _metrics(19.9, 7.0)}
    assert decode.choose(results) == 1.5
    # Nothing beats grey: the best-PSNR setting, not the most colourful one.
    worse = {1.0: _metrics(19.0, 3.0), 2.0: _metrics(18.0, 7.0)}
    assert decode.choose(worse) == 1.0


def test_held_out_halves_choose_on_one_half_and_measure_on_the_other() -> None:
    # Even photos reward gain 2, odd photos punish it: each half's choice is measured on the
    # other half, so the optimistic pick shows up as a PSNR below grey there.
    per_value = {
        1.0: [_metrics(20.5, 3.0) for _ in range(6)],
        2.0: [_metrics(21.0 if i % 2 == 0 else 18.0, 7.0) for i in range(6)],
    }
    even_pick, odd_pick = decode.held_out(per_value)
    assert even_pick["chosen"] == 2.0 and even_pick["psnr"] == pytest.approx(18.0)
    assert odd_pick["chosen"] == 1.0 and odd_pick["psnr"] == pytest.approx(20.5)
    assert even_pick["n_images"] == odd_pick["n_images"] == 3
    assert even_pick["colorfulness_ratio"] == pytest.approx(0.7)
