"""Product shots: a photo centred on a flat canvas, as catalogs show products.

Pillow only (no torch), so the runtime tests can build the same shots the training zoo draws.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter


def on_canvas(image: Image.Image, side: float, background: int, oval: bool) -> Image.Image:
    """`image` centred on a flat canvas `1 / side` times its size: a catalog product shot.

    `oval` pastes it through a soft elliptical mask (a cut-out product) instead of a rectangle.
    """
    w, h = image.size
    canvas = Image.new("RGB", (round(w / side), round(h / side)), (background,) * 3)
    box = ((canvas.width - w) // 2, (canvas.height - h) // 2)
    if not oval:
        canvas.paste(image, box)
        return canvas
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, w - 1, h - 1), fill=255)
    canvas.paste(image, box, mask.filter(ImageFilter.GaussianBlur(1.5)))
    return canvas
