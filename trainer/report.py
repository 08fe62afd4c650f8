"""Evaluation reports of a training run: comparison grids, colorizer and detector numbers.

The trainer calls these on the validation split and writes `report.json` (for tools, and for
`final.pt["metrics"]` / the export manifest) and `report.md` (for people) into the run folder.
Colorizer numbers always come with the grayscale baseline beside them: a colorizer that cannot
beat "leave it grey" on PSNR is not yet worth its colourfulness.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from imgcheck.atomic import atomic_open, atomic_write
from imgcheck.metrics import binary_report
from imgcheck.trainer.colour import lab_to_rgb, rgb_to_lab, rgb_to_luminance
from imgcheck.trainer.metrics import colorfulness, mean_delta_e2000, psnr, ssim

__all__ = [
    "ab_moments",
    "chroma_budget",
    "colorizer_rows",
    "comparison_grid",
    "evaluate_colorizer",
    "evaluate_detector",
    "grayscale",
    "summarise_colorizer",
    "write_report",
]

ImageLike = torch.Tensor | Image.Image
HEADERS = ("original", "grayscale", "colorized")


# ------------------------------------------------------------------------------- grid


def _to_pil(img: ImageLike) -> Image.Image:
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    t = img.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) image, got {tuple(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    arr = (t.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _fit(img: Image.Image, cell: int) -> Image.Image:
    """Scale to fit a cell x cell square keeping the aspect ratio, centred on dark grey."""
    scale = cell / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    canvas = Image.new("RGB", (cell, cell), (32, 32, 32))
    canvas.paste(
        img.resize(size, Image.Resampling.LANCZOS), ((cell - size[0]) // 2, (cell - size[1]) // 2)
    )
    return canvas


def comparison_grid(
    rows: Sequence[tuple[ImageLike, ImageLike, ImageLike]],
    path: str | Path,
    cell: int = 256,
    headers: Sequence[str] = HEADERS,
) -> Path:
    """Write a PNG: one row per example, columns original | grayscale | colorized, headed.

    Images are (3, H, W) / (1, H, W) tensors in [0, 1] or PIL images; each is fitted into a
    `cell` square (aspect kept), so images of different sizes line up. Returns the path.
    """
    if not rows:
        raise ValueError("comparison_grid needs at least one row")
    ncol = len(rows[0])
    if any(len(r) != ncol for r in rows) or len(headers) != ncol:
        raise ValueError("every row needs one image per header")
    pad, head = 4, 22
    width = ncol * cell + (ncol + 1) * pad
    height = head + len(rows) * (cell + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for c, text in enumerate(headers):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = pad + c * (cell + pad) + (cell - (right - left)) // 2
        draw.text((x, (head - (bottom - top)) // 2), text, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(_fit(_to_pil(img), cell), (pad + c * (cell + pad), head + r * (cell + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: sheet.save(stream, format="PNG"))
    return path


# ------------------------------------------------------------------------- colorizer


def grayscale(rgb: torch.Tensor) -> torch.Tensor:
    """The grayscale baseline: CIELAB L with a = b = 0, as an sRGB image (what the colorizer sees)."""
    L = rgb_to_luminance(rgb)
    return lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], dim=-3))


def _batches(images: Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    for img in images:
        yield (img.unsqueeze(0) if img.dim() == 3 else img).float()


@torch.no_grad()
def chroma_level(rgb: torch.Tensor) -> torch.Tensor:
    """Mean CIELAB chroma |ab| per image (N,): the sepia-collapse measure (grey = 0)."""
    ab = rgb_to_lab(rgb)[:, 1:]
    return ab.pow(2).sum(1).sqrt().flatten(1).mean(1)


@torch.no_grad()
def ab_moments(
    out: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image (N,): mean |ab_true|^2, mean |ab_out|^2 and mean <ab_out, ab_true> over pixels.

    The three sums `summarise_colorizer` needs for the chroma budget (how much chroma a
    colorizer could show at grey's error); float64, since the budget is a small difference of
    large sums."""
    t = rgb_to_lab(target.double())[:, 1:]
    p = rgb_to_lab(out.double())[:, 1:]
    return (
        (t * t).sum(1).flatten(1).mean(1),
        (p * p).sum(1).flatten(1).mean(1),
        (p * t).sum(1).flatten(1).mean(1),
    )


def colorizer_rows(
    colorize_fn: Callable[[torch.Tensor], torch.Tensor], images: Iterable[torch.Tensor]
) -> list[dict[str, float]]:
    """Per photo, what `evaluate_colorizer` averages: psnr, ssim, delta_e2000, colorfulness,
    colorfulness_real, chroma, chroma_real, the grayscale baseline's gray_psnr, gray_ssim,
    gray_delta_e2000, and the chroma budget's sums ab_real, ab_out, ab_cross (`ab_moments`).
    Kept per photo so that a caller can summarise any subset of the photos
    (`summarise_colorizer`), e.g. to choose on one half and measure on the other."""
    rows: list[dict[str, float]] = []
    for batch in _batches(images):
        out = colorize_fn(batch).clamp(0, 1)
        if out.shape != batch.shape:
            raise ValueError(
                f"colorizer changed the shape {tuple(batch.shape)} -> {tuple(out.shape)}"
            )
        grey = grayscale(batch)
        ab_real, ab_out, ab_cross = ab_moments(out, batch)
        values = {
            "psnr": psnr(out, batch),
            "ssim": ssim(out, batch),
            "delta_e2000": mean_delta_e2000(out, batch),
            "colorfulness": colorfulness(out),
            "colorfulness_real": colorfulness(batch),
            "chroma": chroma_level(out),
            "chroma_real": chroma_level(batch),
            "gray_psnr": psnr(grey, batch),
            "gray_ssim": ssim(grey, batch),
            "gray_delta_e2000": mean_delta_e2000(grey, batch),
            "ab_real": ab_real,
            "ab_out": ab_out,
            "ab_cross": ab_cross,
        }
        columns = {k: v.detach().cpu().double().flatten().tolist() for k, v in values.items()}
        rows += [{k: col[i] for k, col in columns.items()} for i in range(batch.shape[0])]
    return rows


def summarise_colorizer(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over photos of `colorizer_rows`, plus colorfulness_ratio and chroma_ratio (the
    outputs' mean over the real photos' mean; < 1 means the colorizer is timid) and n_images."""
    keys = rows[0].keys() if rows else ()
    result = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    real, chroma_real = result.get("colorfulness_real", 0.0), result.get("chroma_real", 0.0)
    result["colorfulness_ratio"] = result["colorfulness"] / real if real > 0 else math.nan
    result["chroma_ratio"] = result["chroma"] / chroma_real if chroma_real > 0 else math.nan
    result.update(chroma_budget(result))
    # (no photos: every mean is missing, both ratios NaN, n_images 0)
    result["n_images"] = len(rows)
    return result


def chroma_budget(means: dict[str, float]) -> dict[str, float]:
    """How much chroma this colorizer could show without more ab error than leaving grey.

    With T = E|ab|^2 (the real chroma; grey's ab error), P = E|p|^2 and C = E<p, ab> over the
    photos' pixels, scaling the output chroma by g costs T - 2gC + g^2 P, which stays at or
    below grey's T for g <= 2C / P. So:
    - `chroma_explained` = 1 - E|ab - p|^2 / T, the share of the real chroma energy the output
      explains (0 for grey, 1 for the truth; negative: worse than grey);
    - `chroma_rms_ratio` = sqrt(P / T), the output's RMS chroma over the real photos';
    - `chroma_ceiling` = 2C / sqrt(PT), the largest RMS chroma ratio any rescaling of this
      output reaches at grey's ab error.
    For the best possible colorizer m = E[ab | grey photo] the decomposition E|ab - p|^2 =
    E|ab - m|^2 + E|m - p|^2 bounds *every* colorizer at grey's error by 2 ||m||: an RMS
    chroma ratio r at PSNR >= grey needs a best-possible explained share of at least r^2 / 4
    (r = 0.7: 0.1225, i.e. 0.57 dB of ab error below grey's). This colorizer's explained
    share at its best scale, (C^2 / PT), is a lower bound on that best-possible share.
    """
    T, P, C = (means.get(k, math.nan) for k in ("ab_real", "ab_out", "ab_cross"))
    if not T > 0:
        return {
            "chroma_explained": math.nan,
            "chroma_rms_ratio": math.nan,
            "chroma_ceiling": math.nan,
        }
    return {
        "chroma_explained": 1.0 - (T - 2.0 * C + P) / T,
        "chroma_rms_ratio": math.sqrt(max(P, 0.0) / T),
        "chroma_ceiling": 2.0 * max(C, 0.0) / math.sqrt(P * T) if P > 0 else 0.0,
    }


def evaluate_colorizer(
    colorize_fn: Callable[[torch.Tensor], torch.Tensor], images: Iterable[torch.Tensor]
) -> dict[str, float]:
    """Colorize colour photos (greyed by `colorize_fn` itself) and compare with the originals.

    `images`: (3, H, W) or (N, 3, H, W) tensors in [0, 1]. Returns means over images of: psnr,
    ssim, delta_e2000 (lower is better), colorfulness of the outputs and of the real photos,
    colorfulness_ratio (outputs / real; < 1 means the colorizer is timid), and gray_psnr,
    gray_ssim, gray_delta_e2000 for the grayscale baseline (its colourfulness is 0 by definition,
    so it is not repeated); plus n_images.
    """
    return summarise_colorizer(colorizer_rows(colorize_fn, images))


# -------------------------------------------------------------------------- detector


def _scores(score_fn: Callable[[Any], Any], images: Iterable[Any]) -> np.ndarray:
    out = [
        np.asarray(torch.as_tensor(score_fn(img)).detach().cpu(), dtype=np.float64).reshape(-1)
        for img in images
    ]
    return np.concatenate(out) if out else np.zeros(0)


@torch.no_grad()
def evaluate_detector(
    score_fn: Callable[[Any], Any],
    real_images: Iterable[Any],
    fake_images: Iterable[Any],
    threshold: float,
) -> dict[str, Any]:
    """`binary_report` of a detector on real photos (label 0) and colorized ones (label 1).

    `score_fn` maps one item of the iterables (an image, or a batch) to its score(s): a float,
    array or tensor; it is where the caller applies the detector view (`make_views` +
    `aggregate`), so the numbers match what `imgcheck scan` reports.
    """
    real, fake = _scores(score_fn, real_images), _scores(score_fn, fake_images)
    labels = np.r_[np.zeros(real.size), np.ones(fake.size)]
    return binary_report(labels, np.r_[real, fake], threshold)


# ---------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    """JSON-safe copy: tensors/arrays -> lists or floats, nan/inf -> None, Paths -> str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        return _plain(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value) if value else ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list)) or (
        isinstance(value, list) and all(not isinstance(v, (Mapping, list)) for v in value)
    )


def _markdown(report: Mapping[str, Any], title: str) -> str:
    """Top-level scalars -> a summary table; a section of scalars -> metric | value table; a
    section of same-shaped sub-dicts (e.g. one per colorizer) -> one row per sub-dict."""
    lines = [f"# {title}", ""]
    scalars = {k: v for k, v in report.items() if _is_scalar(v)}
    if scalars:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in scalars.items()]
        lines.append("")
    for name, section in report.items():
        if _is_scalar(section):
            continue
        lines += [f"## {name}", ""]
        if isinstance(section, Mapping) and all(_is_scalar(v) for v in section.values()):
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in section.items()]
        elif isinstance(section, Mapping) and all(
            isinstance(v, Mapping) and all(_is_scalar(x) for x in v.values())
            for v in section.values()
        ):
            cols: list[str] = []
            for sub in section.values():
                cols += [k for k in sub if k not in cols and not isinstance(sub[k], list)]
            lines += [
                "| | " + " | ".join(_cell(c) for c in cols) + " |",
                "|---" * (len(cols) + 1) + "|",
            ]
            for row_name, sub in section.items():
                lines.append(
                    f"| {_cell(row_name)} | " + " | ".join(_cell(sub.get(c)) for c in cols) + " |"
                )
            # List values (e.g. notes) would make the table unreadable: one bullet per distinct
            # item, naming the rows it applies to.
            listed: dict[tuple[str, str], list[str]] = {}
            for row_name, sub in section.items():
                for key, value in sub.items():
                    for item in value if isinstance(value, list) else []:
                        listed.setdefault((key, _cell(item)), []).append(str(row_name))
            if listed:
                lines.append("")
                lines += [
                    f"- {k}: {item} ({', '.join(rows)})" for (k, item), rows in listed.items()
                ]
        else:
            lines += ["```json", json.dumps(section, indent=2), "```"]
        lines.append("")
    return "\n".join(lines)


def write_report(
    run_dir: str | Path, report: Mapping[str, Any], title: str = "imgcheck evaluation report"
) -> tuple[Path, Path]:
    """Write `report.json` (nan -> null) and `report.md` (Markdown tables) into `run_dir`.

    Both are written atomically (`imgcheck.atomic`: tmp + fsync + os.replace), so a
    crash never leaves half a report beside a finished checkpoint. Returns (json path,
    markdown path).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plain = _plain(report)
    paths = []
    for name, text in (
        ("report.json", json.dumps(plain, indent=2, allow_nan=False) + "\n"),
        ("report.md", _markdown(plain, title) + "\n"),
    ):
        path = run_dir / name
        with atomic_open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
        paths.append(path)
    return paths[0], paths[1]
