"""Synthetic test images (numpy + pillow only): uniform noise, flat colours and "real-looking" photos.

Parity checks and benchmarks need images without a dataset. Uniform noise stresses the colour
math over the whole RGB cube; the "natural" images have what photos have and noise lacks:
smooth colour regions, sharp object edges, shading and fine texture, so that resize, the
networks and the detector's patch statistics see realistic inputs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def noise_images(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """(n, H, W, 3) uint8, every value uniform in [0, 255]."""
    return rng.integers(0, 256, size=(n, height, width, 3), dtype=np.uint8)


def flat_images(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """(n, H, W, 3) uint8: flat colours (white, black, grey, random) and, every other image,
    the same with +-1 level of noise: the margins of product shots, where 0/0 in a feature
    shows up first."""
    levels = [(255, 255, 255), (0, 0, 0), (128, 128, 128)]
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        colour = levels[(i // 2) % 3] if i < 6 else tuple(rng.integers(0, 256, 3))
        img = np.broadcast_to(np.array(colour, np.int16), (height, width, 3))
        if i % 2:
            img = img + rng.integers(-1, 2, (height, width, 3))
        out[i] = np.clip(img, 0, 255)
    return out


def natural_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One (H, W, 3) uint8 photo-like image: colour field, shaded shapes, edges, texture."""
    cells = int(rng.integers(2, 7))
    field = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    img = Image.fromarray(field).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 7))):
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, size=2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, size=2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.0, 1.5))))
    arr = np.asarray(img, dtype=np.float32)
    # Shading (a light gradient) and sensor-like texture.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / max(width, 1) + np.sin(angle) * yy / max(height, 1)
    arr *= (0.75 + 0.35 * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6))[..., None]
    arr += rng.normal(0.0, rng.uniform(1.0, 8.0), size=arr.shape)
    if rng.random() < 0.3:  # some low-saturation photos, as real collections have
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + rng.uniform(0.1, 0.5) * (arr - grey)
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


def natural_images(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """(n, H, W, 3) uint8 photo-like images."""
    return np.stack([natural_image(rng, height, width) for _ in range(n)])


def to_grey(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> the same images greyed (ITU-R 601 luma, as PIL's "L"), still RGB."""
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = np.clip(luma + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
