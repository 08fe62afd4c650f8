"""How the shipped detector scores real photos shrunk to thumbnails (MODEL_CARD "Thumbnails").

The 153 validation photos, each shrunk (Lanczos) to a long side of 16-192 px and saved JPEG q90,
scanned with every image scored (`min_side=1`, the limit off); prints the share flagged at the
shipped threshold by short side. Round 2, stop 23, from the repository root in the dev venv:
`python docs/model_card/probes/thumbnails.py` (PHOTOS as in band_probe.py; OUT, default
/tmp/thumbs, receives the thumbnails).
"""

import hashlib
import os
from pathlib import Path

from PIL import Image

from imgcheck.results import Status
from imgcheck.scanning import scan
from imgcheck.trainer.data import is_val

PHOTOS = Path(os.environ.get("PHOTOS", "../shared/photos"))
OUT = Path(os.environ.get("OUT", "/tmp/thumbs"))
LONG_SIDES = (16, 32, 48, 64, 96, 128, 192)
BINS = ((0, 32), (32, 64), (64, 96), (96, 128), (128, 160), (160, 192), (192, 10_000))

val = [
    p
    for r in ("train", "extra")
    for p in sorted((PHOTOS / r).glob("*.jpg"))
    if is_val(hashlib.sha256(p.read_bytes()).hexdigest(), 20)
]
folders = []
for side in LONG_SIDES:
    folder = OUT / str(side)
    folder.mkdir(parents=True, exist_ok=True)
    for p in val:
        im = Image.open(p).convert("RGB")
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
        im.save(folder / f"{p.stem}.jpg", quality=90)
    folders.append(str(folder))
rows = [r for r in scan(folders, min_side=1) if r.status is Status.OK]
print(f"{len(val)} validation photos, {len(rows)} thumbnails scored")
for lo, hi in BINS:
    got = [r for r in rows if lo <= min(r.width, r.height) < hi]
    if got:
        share = sum(r.flagged for r in got) / len(got)
        print(f"short side {lo}-{hi - 1} px: {len(got)} thumbnails, {share:.1%} flagged")
