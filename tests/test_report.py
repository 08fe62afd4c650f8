"""Run reports: grid layout, colorizer/detector evaluation against known answers, file output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="torch is not installed (the train extra)", exc_type=ModuleNotFoundError
)

from PIL import Image  # noqa: E402

from imgcheck.metrics import binary_report  # noqa: E402
from imgcheck.trainer.colour import lab_to_rgb, rgb_to_lab  # noqa: E402
from imgcheck.trainer.report import (  # noqa: E402
    chroma_budget,
    comparison_grid,
    evaluate_colorizer,
    evaluate_detector,
    grayscale,
    write_report,
)


def _flat(rgb: tuple[float, float, float], h: int, w: int) -> torch.Tensor:
    return torch.tensor(rgb).view(3, 1, 1).expand(3, h, w).clone()


def test_comparison_grid_layout_and_content(tmp_path) -> None:
    red, green, blue = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    rows = [
        (
            _flat(red, 20, 40),
            _flat((0.5,) * 3, 20, 40)[:1],
            Image.new("RGB", (40, 20), (0, 0, 255)),
        ),
        (_flat(green, 30, 30), _flat((0.5,) * 3, 30, 30), _flat(blue, 30, 30)),
    ]
    path = comparison_grid(rows, tmp_path / "samples" / "epoch_001.png", cell=64)
    img = np.asarray(Image.open(path).convert("RGB"))
    pad, head, cell = 4, 22, 64
    assert img.shape == (head + 2 * (cell + pad) + pad, 3 * cell + 4 * pad, 3)

    def centre(r: int, c: int) -> tuple[int, ...]:
        y = head + r * (cell + pad) + cell // 2
        x = pad + c * (cell + pad) + cell // 2
        return tuple(int(v) for v in img[y, x])

    assert centre(0, 0) == (255, 0, 0)
    assert centre(0, 1) == (128, 128, 128)  # (1, H, W) grey accepted
    assert centre(0, 2) == (0, 0, 255)  # PIL accepted
    assert centre(1, 0) == (0, 255, 0)
    # A wide image is letterboxed: the top of its cell is background, not image.
    assert tuple(int(v) for v in img[head + 2, pad + cell // 2]) == (32, 32, 32)
    # Headers are drawn (dark text pixels in the header band).
    assert (img[:head].min(axis=2) < 100).any()
    assert not list(tmp_path.glob("samples/*.tmp"))


def test_comparison_grid_rejects_ragged_rows(tmp_path) -> None:
    with pytest.raises(ValueError):
        comparison_grid([(_flat((0, 0, 0), 4, 4),) * 2], tmp_path / "x.png")


def _photos(n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 24, 24, generator=g) for _ in range(n)]


def test_evaluate_colorizer_identity_and_grayscale() -> None:
    photos = _photos()
    perfect = evaluate_colorizer(lambda x: x, photos)
    assert perfect["n_images"] == 3
    assert perfect["psnr"] == pytest.approx(100.0)
    assert perfect["ssim"] == pytest.approx(1.0)
    assert perfect["delta_e2000"] == pytest.approx(0.0, abs=1e-6)
    assert perfect["colorfulness_ratio"] == pytest.approx(1.0)
    # A "colorizer" that returns the grey image scores exactly the grayscale baseline.
    grey = evaluate_colorizer(grayscale, torch.stack(photos).split(2))  # batches accepted
    assert grey["n_images"] == 3
    assert grey["psnr"] == pytest.approx(grey["gray_psnr"])
    assert grey["delta_e2000"] == pytest.approx(grey["gray_delta_e2000"])
    assert grey["colorfulness"] == pytest.approx(0.0, abs=1e-3)
    assert grey["gray_psnr"] < 100 and grey["gray_delta_e2000"] > 1


def test_chroma_budget_of_the_truth_grey_and_a_timid_colorizer() -> None:
    g = torch.Generator().manual_seed(1)
    photos = [0.3 + 0.4 * torch.rand(3, 16, 16, generator=g) for _ in range(3)]  # in gamut
    perfect = evaluate_colorizer(lambda x: x, photos)
    assert perfect["chroma_explained"] == pytest.approx(1.0)
    assert perfect["chroma_rms_ratio"] == pytest.approx(1.0)
    assert perfect["chroma_ceiling"] == pytest.approx(2.0)  # the truth, doubled, errs as grey does
    grey = evaluate_colorizer(grayscale, photos)
    assert grey["chroma_explained"] == pytest.approx(0.0, abs=1e-4)
    assert grey["chroma_rms_ratio"] == pytest.approx(0.0, abs=1e-3)

    def halve(x: torch.Tensor) -> torch.Tensor:
        lab = rgb_to_lab(x.double())
        return lab_to_rgb(torch.cat([lab[:, :1], 0.5 * lab[:, 1:]], dim=1)).float()

    timid = evaluate_colorizer(halve, photos)
    assert timid["chroma_rms_ratio"] == pytest.approx(0.5, abs=1e-3)
    assert timid["chroma_explained"] == pytest.approx(0.75, abs=1e-3)  # 1 - 0.5^2
    assert timid["chroma_ceiling"] == pytest.approx(2.0, abs=1e-3)  # its direction is right


def test_constant_cast_paints_the_training_photos_mean_colour_everywhere() -> None:
    from imgcheck.trainer.colorizer_card import constant_cast

    warm, cool = _flat((0.6, 0.5, 0.4), 8, 8), _flat((0.4, 0.5, 0.6), 8, 8)
    assert constant_cast([]) is None
    cast = constant_cast([warm, warm, cool])
    photo = _photos(1)[0][None]
    out = cast(photo)
    lab_out, lab_in = rgb_to_lab(out.double()), rgb_to_lab(photo.double())
    want = (
        2 * rgb_to_lab(warm[None].double())[0, 1:, 0, 0]
        + rgb_to_lab(cool[None].double())[0, 1:, 0, 0]
    ) / 3
    inside = lab_out[0, 1:].flatten(1).T  # one ab per pixel; the gamut fit may shrink a few
    assert (inside - want).norm(dim=1).median() < 0.5
    assert float((lab_out[:, 0] - lab_in[:, 0]).abs().max()) < 0.5  # the photo's own L


def test_chroma_budget_ceiling_is_where_the_error_reaches_greys() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(2, 5000))
    pred = 0.3 * truth + 0.5 * rng.normal(size=(2, 5000))  # weakly right, noisy
    T = float((truth * truth).sum(0).mean())
    P = float((pred * pred).sum(0).mean())
    C = float((pred * truth).sum(0).mean())
    b = chroma_budget({"ab_real": T, "ab_out": P, "ab_cross": C})
    err = float(((truth - pred) ** 2).sum(0).mean())
    assert b["chroma_explained"] == pytest.approx(1 - err / T)
    gain = b["chroma_ceiling"] / b["chroma_rms_ratio"]  # the largest scale at grey's error
    assert float(((truth - gain * pred) ** 2).sum(0).mean()) == pytest.approx(T)
    worse = float(((truth - 1.01 * gain * pred) ** 2).sum(0).mean())
    assert worse > T
    # A wrong-signed output has no scale that beats grey.
    assert chroma_budget({"ab_real": T, "ab_out": P, "ab_cross": -C})["chroma_ceiling"] == 0.0
    assert math.isnan(chroma_budget({"ab_real": 0.0, "ab_out": P, "ab_cross": C})["chroma_ceiling"])


def test_evaluate_detector_matches_binary_report() -> None:
    real = [torch.full((3, 8, 8), v) for v in (0.1, 0.2, 0.6)]
    fake = [torch.full((3, 8, 8), v) for v in (0.5, 0.7, 0.9, 0.95)]

    def score_fn(img: torch.Tensor) -> float:
        return float(img.mean())

    got = evaluate_detector(score_fn, real, fake, threshold=0.55)
    want = binary_report([0, 0, 0, 1, 1, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.7, 0.9, 0.95], 0.55)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["acc_real"] == pytest.approx(2 / 3) and got["acc_fake"] == pytest.approx(3 / 4)


def test_write_report_json_and_markdown(tmp_path) -> None:
    report = {
        "run": "demo",
        "epochs": 3,
        "colorizer": {
            "gan": {"psnr": 24.5, "colorfulness_ratio": 0.8},
            "lut": {"psnr": 22.0, "delta_e2000": torch.tensor(7.25)},
        },
        "detector_val": {"auc": 0.97, "hter": math.nan, "notes": ["no real images"]},
        "curve": {"fpr": [0.0, 1.0], "deep": {"x": {"y": 1}}},
    }
    json_path, md_path = write_report(tmp_path, report)
    data = json.loads(json_path.read_text())
    assert data["detector_val"]["hter"] is None  # nan -> null, strict JSON
    assert data["colorizer"]["lut"]["delta_e2000"] == 7.25
    md = md_path.read_text()
    assert "| run | demo |" in md
    assert "| | psnr | colorfulness_ratio | delta_e2000 |" in md
    assert "| lut | 22.0000 | n/a | 7.2500 |" in md
    assert "| hter | n/a |" in md and "| notes | no real images |" in md
    assert "```json" in md  # a section with deeper nesting is shown as JSON


def test_markdown_moves_per_row_lists_below_the_table(tmp_path) -> None:
    note = "fewer than 100 real images"
    report = {
        "detector": {"gan": {"auc": 0.9, "notes": [note]}, "knn": {"auc": 0.7, "notes": [note]}}
    }
    md = write_report(tmp_path, report)[1].read_text()
    assert "| | auc |" in md and "| gan | 0.9000 |" in md
    assert f"- notes: {note} (gan, knn)" in md
