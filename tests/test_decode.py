"""decode(): every kind of bad or unusual file gives a Decoded or a one-line DecodeFailure."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgcheck import decode as decode_mod
from imgcheck.decode import Decoded, DecodeError, DecodeFailure, decode, decode_file


def _colour(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _ok(result: Decoded | DecodeFailure) -> Decoded:
    assert isinstance(result, Decoded), getattr(result, "error", result)
    assert result.image.mode == "RGB"
    return result


def _failed(result: Decoded | DecodeFailure) -> DecodeFailure:
    assert isinstance(result, DecodeFailure), result
    assert result.error and "\n" not in result.error
    return result


def test_colour_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    _colour().save(path, quality=95)
    d = _ok(decode(path))
    assert (d.width, d.height, d.format, d.grayscale, d.frames) == (64, 48, "JPEG", False, 1)
    assert d.image.size == (64, 48)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty" in _failed(decode(path)).error


def test_truncated_jpeg_keeps_header_size(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _colour(200, 100).save(buf, "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    f = _failed(decode(path))
    assert "truncated" in f.error
    assert (f.format, f.width, f.height) == ("JPEG", 200, 100)


def test_jpeg_cut_inside_its_header_says_truncated(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _colour(200, 100).save(buf, "JPEG", quality=95)
    path = tmp_path / "head.jpg"
    path.write_bytes(buf.getvalue()[:200])  # SOI and part of the tables: no frame header yet
    assert _failed(decode(path)).error.startswith("truncated or corrupt file:")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("hello, not an image\n")
    assert "not an image" in _failed(decode(path)).error


def test_max_pixels_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _colour(100, 100).save(path)
    f = _failed(decode(path, max_pixels=5000))
    assert "too large" in f.error and (f.width, f.height) == (100, 100)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_caught_at_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(40_000, 40_000))  # 1.6 gigapixels declared in 60 bytes
    assert "too large" in _failed(decode(path)).error
    # With our limit lifted, Pillow's own DecompressionBombError is still turned into a row.
    assert "too large" in _failed(decode(path, max_pixels=None)).error


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    d = _ok(decode(path))
    assert d.mode == "CMYK" and not d.grayscale
    r, g, b = d.image.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    arr = np.full((20, 30), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(path)
    d = _ok(decode(path))
    assert d.grayscale and d.mode.startswith("I")
    assert abs(d.image.getpixel((5, 5))[0] - 128) <= 1


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    path = tmp_path / "pal.png"
    im = Image.new("P", (16, 16), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (0, 0, 8, 16))
    im.save(path, transparency=0)
    d = _ok(decode(path))
    assert d.image.getpixel((12, 8)) == (255, 255, 255)  # transparent red -> white background
    assert d.image.getpixel((2, 8)) == (0, 0, 255)
    assert not d.grayscale


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_first_frame(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"anim.{fmt.lower()}"
    frames = [Image.new("RGB", (24, 24), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    d = _ok(decode(path))
    assert d.frames == 3 and d.format == fmt
    r, g, b = d.image.getpixel((12, 12))
    assert r > 200 and g < 60 and b < 60  # the first frame, documented


def test_exif_rotated_jpeg_reports_upright_size(tmp_path: Path) -> None:
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    _colour(80, 40).save(path, exif=exif.tobytes())
    d = _ok(decode(path))
    assert (d.width, d.height) == (40, 80)
    assert d.image.size == (40, 80)


@pytest.mark.parametrize("size", [(1, 1), (10_000, 10)])
def test_extreme_sizes(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "odd.png"
    _colour(*size).save(path)
    d = _ok(decode(path))
    assert (d.width, d.height) == size


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.jpg"
    _colour().save(path)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    # Tests run as root, where chmod 000 does not stop reading: simulate the refusal instead.
    monkeypatch.setattr(decode_mod, "open_regular", denied)
    assert _failed(decode(path)).error == "permission denied"


def test_broken_symlink_directory_and_missing(tmp_path: Path) -> None:
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "nowhere.jpg")
    assert _failed(decode(link)).error == "broken symlink"
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    assert _failed(decode(folder)).error == "is a directory"
    assert "no such file" in _failed(decode(tmp_path / "missing.png")).error


def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert _failed(decode(fifo)).error == "not a regular file"


def test_grayscale_detection(tmp_path: Path) -> None:
    grey = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    Image.fromarray(grey, "L").convert("LA").save(tmp_path / "la.png")
    Image.fromarray(grey, "L").convert("RGB").save(tmp_path / "rgb.jpg", quality=80)
    pal = Image.fromarray(grey, "P")
    pal.putpalette([v for i in range(256) for v in (i, i, i)])  # a grey palette
    pal.save(tmp_path / "p.png")
    for name in ("l.png", "la.png", "rgb.jpg", "p.png"):
        assert _ok(decode(tmp_path / name)).grayscale, name
    tinted = np.stack([grey, grey, np.clip(grey.astype(int) + 40, 0, 255).astype(np.uint8)], -1)
    Image.fromarray(tinted, "RGB").save(tmp_path / "tint.png")
    assert not _ok(decode(tmp_path / "tint.png")).grayscale


def test_jpeg_draft_reduces_but_never_below_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    _colour(1600, 800).save(path, quality=90)
    d = _ok(decode(path, draft_scale=0.25))
    assert (d.width, d.height) == (1600, 800)
    assert d.image.size == (400, 200)
    # 1/4 would give 400 < 0.3 * 1600: the decoder stops at 1/2 instead of going below.
    assert _ok(decode(path, draft_scale=0.3)).image.size == (800, 400)
    seen: list[tuple[int, int]] = []
    _ok(decode(path, draft_scale=lambda w, h: seen.append((w, h)) or 1.0))
    assert seen == [(1600, 800)]
    png = tmp_path / "big.png"
    _colour(1600, 800).save(png)
    assert _ok(decode(png, draft_scale=0.3)).image.size == (1600, 800)  # only JPEG drafts


def test_decode_file_raises_with_message(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty"):
        decode_file(path)
