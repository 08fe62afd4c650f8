"""Turning command-line arguments into a stream of image paths, without ever listing them all.

Used by `scan` and `colorize`. Arguments may be files, folders (walked recursively by default),
glob patterns, or `-` (read paths from stdin, one per line). Every argument that cannot be used
(missing, broken symlink, unreadable folder) becomes an `InputItem` with an `error`, so the caller
reports a row for it instead of stopping the run.

Rules, in the order they apply:
- A literal path that exists wins over glob expansion (a file may be called `[1].jpg`).
- A path named explicitly (argument, stdin line) is always yielded, whatever its content: a text
  file called `x.jpg` must get its error row. `--include/--exclude` filter only what a folder walk
  or a glob finds.
- In a folder walk, a file is an image when its extension is a known image extension or when its
  first bytes are an image signature (so `photo` without an extension is found too). Names
  starting with `.` (`.git`, macOS `._x.jpg` resource forks) are skipped, and so are
  `node_modules`, `__pycache__` and virtual environments; with `respect_gitignore`, what git
  ignores too (`imgcheck.ignore`; also applied to what a glob finds). FIFOs, sockets and
  devices are skipped: opening a FIFO would block the run.
- Symlinks to folders are followed, but a folder (by device and inode) is walked at most once,
  so symlink loops end.
- Order: each folder's entries are sorted by name, so reports are stable and diffable; a folder
  with more than `SORT_LIMIT` entries is streamed in directory order instead, so memory stays
  bounded whatever the folder size.

Paths are `str`; a non-UTF-8 file name holds surrogate escapes (`os.fsdecode`), which opens the
right file. `display_path` makes such names printable for reports.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from imgcheck.files import open_regular
from imgcheck.ignore import GitIgnore, always_skipped_dir

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib",
        ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".tga", ".jp2", ".j2k", ".jpx",
        ".avif", ".heic", ".heif", ".mpo", ".pcx", ".qoi",
    }
)  # fmt: skip
SORT_LIMIT = 50_000
SNIFF_BYTES = 16


@dataclass(frozen=True)
class InputItem:
    """One path to process. `error` is set when the path cannot be used (it still gets a row)."""

    path: str
    error: str | None = None

    @property
    def display(self) -> str:
        return display_path(self.path)


def display_path(path: str) -> str:
    """A printable form of `path`: undecodable bytes of a non-UTF-8 name show as `\\xff`."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def sniff(head: bytes) -> str | None:
    """Image format from a file's first bytes, or None; cheap enough to run on every file."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "AVIF/HEIF"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head.startswith(b"qoif"):
        return "QOI"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PPM"
    return None


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _looks_like_image(path: str, name: str) -> bool:
    if is_image_name(name):
        return True
    try:  # never a plain open(): a FIFO swapped in after the walk saw a file would block
        with open_regular(path) as fh:
            return sniff(fh.read(SNIFF_BYTES)) is not None
    except OSError:
        return False  # unreadable and no image extension: most likely not an image at all


def os_error_message(exc: OSError) -> str:
    """`[Errno 13] Permission denied: 'x'` -> `permission denied` (the path is in the row)."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


class _Filter:
    """--include/--exclude: a pattern without `/` matches the name, one with `/` the relative path."""

    def __init__(self, include: Iterable[str], exclude: Iterable[str]) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)

    @staticmethod
    def _match(rel: str, patterns: tuple[str, ...]) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(rel if "/" in p else name, p) for p in patterns)

    def skip_dir(self, rel: str) -> bool:
        return bool(self.exclude) and self._match(rel, self.exclude)

    def keep_file(self, rel: str) -> bool:
        if self.exclude and self._match(rel, self.exclude):
            return False
        return not self.include or self._match(rel, self.include)


def _bounded_sorted(entries: Iterable[Any], key: Any) -> Iterator[Any]:
    """Sorted when there are at most SORT_LIMIT entries, else streamed in their own order."""
    it = iter(entries)
    head = list(itertools.islice(it, SORT_LIMIT + 1))
    if len(head) <= SORT_LIMIT:
        yield from sorted(head, key=key)
    else:
        yield from head
        yield from it


class _Walker:
    def __init__(self, recursive: bool, filt: _Filter, ignore: GitIgnore | None = None) -> None:
        self.recursive = recursive
        self.filt = filt
        self.ignore = ignore
        self.seen: set[tuple[int, int]] = set()  # (st_dev, st_ino) of every folder walked

    def first_visit(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return True  # let scandir report the error
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def walk(self, root: str) -> Iterator[InputItem]:
        """Depth-first, iterative (no recursion limit), one open folder handle per level."""
        if not self.first_visit(root):
            return
        stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = []
        opened = self._open(root)
        if isinstance(opened, InputItem):
            yield opened
            return
        stack.append(("", opened))
        while stack:
            rel_dir, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks
                is_file = not is_dir and entry.is_file()
            except OSError as exc:
                yield InputItem(entry.path, os_error_message(exc))
                continue
            if self.ignore is not None and self.ignore.ignored(entry.path, is_dir):
                continue
            if is_dir:
                if always_skipped_dir(entry.path, entry.name):
                    continue
                if self.recursive and not self.filt.skip_dir(rel) and self.first_visit(entry.path):
                    opened = self._open(entry.path)
                    if isinstance(opened, InputItem):
                        yield opened
                    else:
                        stack.append((rel, opened))
            elif is_file:
                if self.filt.keep_file(rel) and _looks_like_image(entry.path, entry.name):
                    yield InputItem(entry.path)
            elif (
                entry.is_symlink()
                and not os.path.exists(entry.path)
                and self.filt.keep_file(rel)
                and is_image_name(entry.name)
            ):
                yield InputItem(entry.path, "broken symlink")
            # anything else (FIFO, socket, device) is not an image file: skipped

    @staticmethod
    def _open(path: str) -> Iterator[os.DirEntry[str]] | InputItem:
        try:
            scanner = os.scandir(path)
        except OSError as exc:
            return InputItem(path, os_error_message(exc))

        def entries() -> Iterator[os.DirEntry[str]]:
            with scanner:
                yield from _bounded_sorted(scanner, key=lambda e: e.name)

        return entries()


def _explicit(path: str, walker: _Walker) -> Iterator[InputItem]:
    """A path the user named: a folder is walked, anything else is yielded (errors included)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            yield InputItem(path, "broken symlink")
        else:
            yield InputItem(path, "no such file or directory")
        return
    except OSError as exc:
        yield InputItem(path, os_error_message(exc))
        return
    if stat.S_ISDIR(st.st_mode):
        yield from walker.walk(path)
    elif stat.S_ISREG(st.st_mode):
        yield InputItem(path)
    else:
        yield InputItem(path, "not a regular file")


def _glob(pattern: str, walker: _Walker) -> Iterator[InputItem]:
    found = False
    for path in _bounded_sorted(glob.iglob(pattern, recursive=True), key=None):
        found = True
        if walker.ignore is not None and walker.ignore.ignored_with_parents(path):
            continue
        if os.path.isdir(path):
            yield from walker.walk(path)
        elif walker.filt.keep_file(path.replace(os.sep, "/")):
            yield from _explicit(path, walker)
    if not found:
        yield InputItem(pattern, "no files match this pattern")


def _stdin_lines(stdin: IO[Any]) -> Iterator[str]:
    """One path per line; bytes are decoded like file names so non-UTF-8 names survive."""
    source = getattr(stdin, "buffer", stdin)
    for line in source:
        text = os.fsdecode(line) if isinstance(line, bytes) else line
        text = text.rstrip("\r\n")
        if text:
            yield text


def iter_inputs(
    args: Iterable[str | os.PathLike[str] | bytes],
    *,
    recursive: bool = True,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    stdin: IO[Any] | None = None,
    respect_gitignore: bool = False,
) -> Iterator[InputItem]:
    """Yield every image path named by `args`, lazily, errors as items (see the module doc).

    `-` reads paths from `stdin` (default `sys.stdin`), one per line, each treated as a literal
    path (never a glob: `find` output may contain `[`).
    """
    ignore = GitIgnore() if respect_gitignore else None
    walker = _Walker(recursive, _Filter(include, exclude), ignore)
    for arg in args:
        path = os.fsdecode(arg) if isinstance(arg, bytes) else os.fspath(arg)
        if path == "-":
            if stdin is None:
                import sys

                stdin = sys.stdin
            for line in _stdin_lines(stdin):
                yield from _explicit(line, walker)
        elif os.path.lexists(path) or not glob.has_magic(path):
            yield from _explicit(path, walker)
        else:
            yield from _glob(path, walker)
