"""Fixtures for the scan engines and URL inputs (issue 13): an awkward image folder, CSV rows
compared across engines, and a real S3-compatible server (moto's) on loopback."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from fixtures_onnx import colourful, muted
from PIL import Image

SCORE_TOLERANCE = 1e-6


def awkward_folder(root: Path, *, local_only: bool = True) -> Path:
    """Images a real catalog has: flagged, real, grey, odd modes and sizes, nested folders, a
    folder named like an image, and files that cannot be read. `local_only=False` leaves out
    what object storage cannot hold the same way (a non-UTF-8 name, a broken symlink, an image
    without extension, which a bucket listing does not sniff)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "folder.jpg").mkdir()
    Image.fromarray(colourful(seed=1)).save(root / "colour.png")
    Image.fromarray(muted(seed=2)).save(root / "muted.jpg", quality=95)
    Image.fromarray(muted(seed=3)[..., 0], "L").save(root / "grey.png")
    Image.fromarray(colourful(120, 70, seed=4)).save(root / "sub" / "deep" / "colour2.webp")
    Image.fromarray(colourful(seed=5)).convert("CMYK").save(root / "sub" / "cmyk.jpg")
    Image.fromarray(muted(seed=6)).quantize(16).save(root / "palette.png", transparency=0)
    rgba = np.dstack([colourful(seed=7), np.full((80, 96), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    Image.fromarray(muted(seed=8)[..., 0].astype(np.uint16) * 257).save(root / "grey16.png")
    Image.fromarray(colourful(12, 9, seed=9)).save(root / "tiny.png")
    Image.fromarray(colourful(seed=10)).save(root / "folder.jpg" / "inside.png")
    (root / "empty.jpg").write_bytes(b"")
    whole = io.BytesIO()
    Image.fromarray(colourful(seed=11)).save(whole, "JPEG")
    (root / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    (root / "text.jpg").write_text("not an image")
    Image.fromarray(colourful(seed=12)).save(root / ".hidden.png")  # skipped by every walk
    if local_only:
        Image.fromarray(muted(seed=13)).save(root / "noext", "PNG")  # found by its signature
        name = os.fsdecode(b"caf\xe9.png")  # not UTF-8
        Image.fromarray(colourful(seed=14)).save(root / name)
        os.symlink(root / "missing.png", root / "broken.png")
    return root


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_same_rows(
    got: list[dict[str, str]], want: list[dict[str, str]], *, path_map: tuple[str, str] = ("", "")
) -> None:
    """Same rows in the same order: every cell equal, scores within SCORE_TOLERANCE.
    `path_map` (old, new) rewrites `want`'s path prefix (a bucket against a folder)."""
    assert [r["path"] for r in got] == [r["path"].replace(*path_map, 1) for r in want]
    for g, w in zip(got, want, strict=True):
        for key in w:
            if key == "path":
                continue
            if key == "score" and w[key]:
                assert abs(float(g[key]) - float(w[key])) <= SCORE_TOLERANCE, (g, w)
            else:
                assert g[key] == w[key], (key, g, w)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (a real HTTP server, the real S3 protocol);
    yields its endpoint URL. Stopped on exit."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


S3_ENV = {"FSSPEC_S3_KEY": "testing", "FSSPEC_S3_SECRET": "testing"}


def s3_settings(endpoint: str) -> dict[str, str]:
    """What a user sets to point fsspec at an S3-compatible endpoint (environment variables)."""
    return {**S3_ENV, "FSSPEC_S3_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


def upload(folder: Path, endpoint: str, bucket: str, prefix: str) -> None:
    """Every file under `folder` into s3://bucket/prefix/, keys by relative path (s3fs)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing", secret="testing", endpoint_url=endpoint, skip_instance_cache=True
    )
    if not fs.exists(bucket):  # moto's state is per process: a bucket may outlive its server
        fs.mkdir(bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(folder).as_posix()
            fs.pipe_file(f"{bucket}/{prefix}/{rel}", path.read_bytes())
