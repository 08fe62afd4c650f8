"""Build examples/catalog/: the small demo folder the README's first command scans.

Photos come from the validation split of the shipped models' training run (never trained on):
8 kept as real photos, 8 others colorized by the shipped colorizer (greyed, then colorized, as
`imgcheck colorize` does), 4 others turned grayscale. All are downscaled to at most 640 px and
saved as JPEG q90, so the only difference between the groups is how their colour came about.
File names say which group an image is in, so the README's output can be checked by eye.

    python examples/make_catalog.py --run runs/default --out examples/catalog
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from PIL import Image

from imgcheck.colorizing import colorize

SIDE = 640
COUNTS = {"real": 8, "colorized": 8, "grayscale": 4}


def _small(path: Path) -> Image.Image:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    rgb.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    return rgb


def _listed(sources_md: Path) -> list[tuple[str, str, str]]:
    """(source photo, package, licence) of each table row of a SOURCES.md, in file order."""
    rows = []
    for line in sources_md.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".jpg"):
            rows.append((cells[1], cells[2], cells[3]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="photo folder, if it moved")
    p.add_argument("--manifest", type=Path, default=None, help="MANIFEST.tsv for the credits")
    p.add_argument(
        "--same-photos", type=Path, default=None, metavar="SOURCES_MD",
        help="re-make the catalog from the photos (and credits) an existing SOURCES.md lists, "
        "e.g. after the shipped colorizer changed",
    )  # fmt: skip
    args = p.parse_args()
    split = json.loads((args.run / "split.json").read_text(encoding="utf-8"))
    root = args.data or Path(split["root"])
    args.out.mkdir(parents=True, exist_ok=True)
    credits = {}
    manifest = args.manifest or root.parent / "MANIFEST.tsv"
    if manifest.is_file():
        with open(manifest, encoding="utf-8") as fh:
            credits = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    if args.same_photos is not None:
        listed = _listed(args.same_photos)
        picks = [name for name, _, _ in listed]
        credits = {Path(n).name: {"source_package": c, "licence": lic} for n, c, lic in listed}
    else:
        # Spread the picks over the sorted list so the groups mix sources.
        val = sorted(split["val"])
        step = max(1, len(val) // sum(COUNTS.values()))
        picks = val[::step]
    rows = []
    i = 0
    for group, n in COUNTS.items():
        for k in range(n):
            name = picks[i]
            i += 1
            image = _small(root / name)
            if group == "colorized":
                image = colorize(image)
            elif group == "grayscale":
                image = image.convert("L")
            target = args.out / f"{group}-{k + 1:02d}.jpg"
            image.save(target, quality=90)
            src = credits.get(Path(name).name, {})
            rows.append(
                (target.name, name, src.get("source_package", "?"), src.get("licence", "?"))
            )
    lines = [
        "# Example catalog: sources",
        "",
        "Made by `examples/make_catalog.py` from validation photos of `../shared/photos/train`",
        "(Debian packages, see MODEL_CARD.md). `colorized-*` were greyed and colorized by the",
        "shipped colorizer; `grayscale-*` were converted to grayscale; `real-*` are the photos.",
        "",
        "| file | source photo | Debian package | licence |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
    ]
    (args.out / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
