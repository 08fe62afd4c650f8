"""Where `imgcheck colorize` writes, and how, so that no run can damage what it reads.

Three promises, each enforced here and nowhere else:

- **Never over an input.** Before anything is written, every planned output is checked against
  every input by file identity (device + inode, so hard links, `./a.jpg` vs `a.jpg` and
  case-insensitive file systems are all caught). One collision refuses the whole run
  (`InputCollision`, exit 2): a half-done run that destroyed half the photos is the worst case.
- **Never outside OUTDIR.** A relative output path is joined to OUTDIR only if it has no
  absolute anchor and no `..`, its folder resolves (symlinks followed) inside OUTDIR, and the file
  itself is not a symlink. A violation is a per-file `OutputError` (that image fails, the run
  goes on). The write itself is done relative to a descriptor of OUTDIR with every folder below
  it opened `O_NOFOLLOW` (`atomic_open(..., root=OUTDIR)`), so a symlink placed in the output
  tree after planning fails that one image instead of sending it elsewhere.
- **Never half-written.** Every file is written to a hidden temporary file in its final folder,
  fsynced, and `os.replace`d over the target, so the target is either absent, the old file or the
  complete new one, even after `kill -9` (`imgcheck.atomic`, shared with the reports and
  the trainer). Temporary names carry the writer's pid; a later run removes those whose writer is
  gone (`remove_stale_temps`). An existing complete output means
  "done": the run skips it unless `--overwrite`, which is what makes a rerun resume.

Import cost is only the standard library (and `inputs`, which is standard library too): the CLI
module imports `Format` from here at top level. PIL is imported by the caller of `save_image`.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

# The atomic writer and its temp-file sweeper are shared with reports and the trainer;
# re-exported here because this module is where colorize's write rules are documented.
from imgcheck.atomic import TEMP_SUFFIX as TEMP_SUFFIX
from imgcheck.atomic import atomic_write
from imgcheck.atomic import remove_stale_temps as remove_stale_temps
from imgcheck.inputs import InputItem, iter_inputs

COMPARE_TAG = ".compare"


class Format(str, Enum):
    """`--format`: the output encoding; `same` keeps the input's format where PIL can write it."""

    PNG = "png"
    JPG = "jpg"
    WEBP = "webp"
    SAME = "same"


# Suffix (lower case) -> PIL format name, for the formats `--format same` keeps as they are.
# Anything else (GIF: 256 colours; HEIC, ICO, PGM, ...: cannot hold a colour photo or cannot be
# written by plain Pillow) becomes PNG, which is lossless and universal.
_SAME_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_EXPLICIT = {
    Format.PNG: ("PNG", ".png"),
    Format.JPG: ("JPEG", ".jpg"),
    Format.WEBP: ("WEBP", ".webp"),
}


class OutputError(ValueError):
    """This one input cannot get an output (unsafe name, symlink, clash): an error row."""


class InputCollision(OutputError):
    """An output would replace an input: the whole run is refused before anything is written."""


def output_format(fmt: Format, source_suffix: str) -> tuple[str, str]:
    """(PIL format name, file suffix) for an input with `source_suffix` under `--format fmt`."""
    if fmt is Format.SAME:
        pil = _SAME_FORMATS.get(source_suffix.lower())
        return (pil, source_suffix) if pil else ("PNG", ".png")
    return _EXPLICIT[fmt]


def safe_join(root: Path, rel: PurePath | str) -> Path:
    """`root / rel`, refusing anything that could land outside `root`.

    `root` must already be resolved. Returns the path with its folder resolved, so later writes
    go exactly where the check looked.
    """
    rel = PurePath(rel)
    if rel.anchor or rel.is_absolute():
        raise OutputError(f"output name {str(rel)!r} is absolute")
    if not rel.parts or any(part in ("..", "") for part in rel.parts) or rel.name in ("", "."):
        raise OutputError(f"output name {str(rel)!r} is not a plain relative path")
    parent = (root / rel).parent.resolve()
    if parent != root and root not in parent.parents:
        raise OutputError(f"output {root / rel} would escape the output folder {root} (symlink?)")
    path = parent / rel.name
    if path.is_symlink():
        raise OutputError(f"output {path} is a symlink; refusing to write through it")
    return path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class Target:
    """The files one input produces, and which of them this run still has to write."""

    output: Path
    compare: Path | None
    pil_format: str
    write_output: bool
    write_compare: bool
    root: Path | None = None  # OUTDIR (resolved): writes may not leave it, even through a race

    @property
    def done(self) -> bool:
        """Everything already exists (a previous run finished this input): skip it."""
        return not (self.write_output or self.write_compare)

    def paths(self) -> list[Path]:
        return [self.output] + ([self.compare] if self.compare is not None else [])


class OutputPlanner:
    """Maps inputs to outputs under OUTDIR and applies the safety rules in the module docstring.

    Build it with every input of the run (the collision check needs all of them), then call
    `plan()` once per input in order; the first input that claims an output path keeps it.
    """

    def __init__(
        self,
        outdir: Path,
        inputs: Iterable[Path],
        fmt: Format = Format.SAME,
        compare: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.outdir = Path(outdir).resolve()
        self.fmt = fmt
        self.compare = compare
        self.overwrite = overwrite
        self._inputs: dict[tuple[int, int], Path] = {}
        self._input_paths: set[Path] = set()
        for p in inputs:
            ident = _identity(Path(p))
            if ident is not None:
                self._inputs.setdefault(ident, Path(p))
            with contextlib.suppress(OSError):
                self._input_paths.add(Path(p).resolve())
        self._claimed: dict[Path, str] = {}

    def _check_not_input(self, path: Path, source: str) -> None:
        ident = _identity(path)
        if path in self._input_paths or (ident is not None and ident in self._inputs):
            raise InputCollision(
                f"output {path} for {source} would overwrite an input "
                f"({self._inputs.get(ident, path) if ident else path})"
            )

    def plan(self, rel: PurePath | str, source: Path | str) -> Target:
        """The target for one input; `rel` is its path relative to OUTDIR (before the suffix)."""
        rel = PurePath(rel)
        pil_format, suffix = output_format(self.fmt, rel.suffix)
        out_rel = (
            rel.with_name(rel.stem + suffix) if rel.suffix else rel.with_name(rel.name + suffix)
        )
        output = safe_join(self.outdir, out_rel)
        compare = None
        if self.compare:
            compare = safe_join(self.outdir, out_rel.with_name(f"{rel.stem}{COMPARE_TAG}{suffix}"))
        label = str(source)
        for path in [output] + ([compare] if compare else []):
            self._check_not_input(path, label)
            other = self._claimed.get(path)
            if other is not None:
                raise OutputError(f"output {path} is already written for {other}")
        for path in [output] + ([compare] if compare else []):
            self._claimed[path] = label
        return Target(
            output=output,
            compare=compare,
            pil_format=pil_format,
            write_output=self.overwrite or not output.exists(),
            write_compare=compare is not None and (self.overwrite or not compare.exists()),
            root=self.outdir,
        )


def save_image(
    image: Any, path: Path, pil_format: str, quality: int = 92, root: Path | None = None
) -> None:
    """Encode a PIL image atomically. `quality` applies to JPEG and WebP; PNG stays lossless.
    `root`: the output folder `path` must stay inside (folders below it are created).

    No EXIF is copied (orientation is already applied to the pixels, and a stale orientation tag
    would rotate the output twice) and no ICC profile is written: the pixels are sRGB.
    """
    options: dict[str, Any] = {}
    if pil_format == "JPEG":
        options = {"quality": quality, "optimize": True}
        if quality >= 90:
            options["subsampling"] = 0  # keep the chroma the model just produced at full res
    elif pil_format == "WEBP":
        options = {"quality": quality, "method": 4}
    elif pil_format == "PNG":
        options = {"compress_level": 6}
    elif pil_format == "TIFF":
        options = {"compression": "tiff_deflate"}
    (path.parent if root is None else root).mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda s: image.save(s, format=pil_format, **options), root=root)
    except OSError as exc:
        # libjpeg's optimizer needs the whole file in one buffer, which Pillow sizes at 1-2
        # bytes per pixel: noise-like images overflow it ("broken data stream", no errno).
        # A disk error always carries its errno (the atomic writer re-raises it).
        if exc.errno is not None or not options.pop("optimize", False):
            raise
        atomic_write(path, lambda s: image.save(s, format=pil_format, **options), root=root)


def _glob_base(pattern: str) -> str:
    """The folder a glob's matches are mirrored from: its leading components without magic."""
    parts = pattern.split(os.sep)
    base: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        base.append(part)
    joined = os.sep.join(base)
    return joined or (os.sep if pattern.startswith(os.sep) else ".")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass
class Discovery:
    """The inputs of a colorize run, each with its output name relative to OUTDIR.

    The tree under a folder argument (or under the fixed part of a glob) is mirrored; a file
    named directly (argument or stdin line) lands at the top of OUTDIR by its file name.
    When OUTDIR lies inside a folder being walked, files found inside OUTDIR are left out
    (`left_out` counts them), so a rerun does not colorize the previous run's outputs.
    Discovery and its rules (globs, stdin, filters, symlink loops) are `inputs.iter_inputs`'s;
    this only calls it one argument (or stdin line) at a time to know each find's base folder.
    """

    args: list[str]
    outdir: Path
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    stdin: Any = None
    left_out: int = 0

    def _items(self, args: list[str], stdin: Any = None) -> Iterator[InputItem]:
        return iter_inputs(
            args, recursive=self.recursive, include=self.include, exclude=self.exclude, stdin=stdin
        )

    def _sources(self) -> Iterator[tuple[Iterator[InputItem], str | None]]:
        """(the items of one argument or stdin line, the folder they are relative to or None)."""
        for arg in self.args:
            if arg == "-":
                source = self.stdin if self.stdin is not None else sys.stdin
                for line in getattr(source, "buffer", source):
                    raw = line if isinstance(line, bytes) else os.fsencode(line)
                    raw = raw.rstrip(b"\r\n")
                    if raw:  # each line through iter_inputs' own stdin rules (a literal path)
                        path = os.fsdecode(raw)
                        base = path if os.path.isdir(path) else None
                        yield self._items(["-"], io.BytesIO(raw + b"\n")), base
            elif os.path.lexists(arg) or not glob.has_magic(arg):
                yield self._items([arg]), arg if os.path.isdir(arg) else None
            else:
                yield self._items([arg]), _glob_base(arg)

    def __iter__(self) -> Iterator[tuple[InputItem, str]]:
        outdir = self.outdir.resolve()
        for items, base in self._sources():
            drop_outdir = False
            if base is not None:
                root = Path(base).resolve()
                drop_outdir = outdir != root and _inside(outdir, root)
            for item in items:
                if base is None or item.error is not None:
                    rel = os.path.basename(item.path) or item.path
                else:
                    if drop_outdir and _inside(Path(item.path).resolve(), outdir):
                        self.left_out += 1
                        continue
                    rel = os.path.relpath(item.path, base)
                yield item, rel
