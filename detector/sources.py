"""Inputs named by URL (`s3://bucket/prefix`, `gs://...`, `file:///...`) beside local paths.

Both scan engines read them: `iter_sources` lists what a URL names (through fsspec, one
recursive listing per prefix), `decode.decode` fetches a URL's bytes with `fetch` and decodes
them like a local file, so a user can try a bucket on a laptop (`--engine local`) before running
the same command on a cluster (`--engine ray`). Rows keep the URL as their `path`.

Rules, kept as close to the local walk (`imgcheck.inputs`) as object storage allows:
- A URL naming one object is always scanned (its error row says if it is no image), like a file
  named on the command line. A prefix is listed recursively (`--no-recursive`: one level);
  a URL with glob characters is expanded by the filesystem's glob.
- In a listing, objects are images by extension only (sniffing every object's first bytes would
  cost one request per object), names starting with `.` are skipped at every level, and
  `--include/--exclude` match as for folders (relative to the prefix). `.gitignore` does not
  apply to object storage.
- Order: by path components, as the local walk sorts each folder, so disk and bucket give the
  same row order.
- `file://` URLs are walked and read as the local paths they are (the local safety rules:
  FIFOs, symlinks, `.gitignore`), and their rows say `file://...`.

fsspec and the protocol's package (s3fs for `s3://`, gcsfs for `gs://`) are imported only when a
URL is named; a missing one is a usage error naming what to install. Object storage settings
(endpoint, credentials) come from the usual places: the environment (`AWS_*`), the tool's own
config files, or fsspec's `FSSPEC_<PROTOCOL>_<OPTION>` variables (e.g. `FSSPEC_S3_ENDPOINT_URL`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from imgcheck.errors import first_line
from imgcheck.inputs import InputItem, _Filter, is_image_name, iter_inputs

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
#: Largest object `fetch` reads (bytes): a bigger one is an error row, never a memory blow-up.
MAX_FETCH = 1 << 30
#: Protocol -> the package that implements it, for the install hint.
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
             "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub"}  # fmt: skip


class SourceError(ValueError):
    """A URL that cannot be used at all (unknown protocol, missing package): exit 2."""


def is_url(path: str) -> bool:
    """True for `scheme://...` (a Windows drive `C:\\` or a plain path is not one)."""
    return bool(_URL.match(path))


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def local_path(url: str) -> str | None:
    """The local path of a `file://` URL, else None."""
    if protocol(url) not in ("file", "local"):
        return None
    rest = url.split("://", 1)[1]
    if rest.startswith("/"):  # file:///tmp/x
        return rest
    host, sep, tail = rest.partition("/")  # file://localhost/tmp/x
    return "/" + tail if sep and host in ("", "localhost") else rest


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for `url`; SourceError when it cannot be had."""
    try:
        import fsspec.core
    except ImportError:
        raise SourceError(
            f"{url}: reading URLs needs fsspec: pip install 'imgcheck-colorize[ray]' "
            "(or pip install fsspec)"
        ) from None
    proto = protocol(url)
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        package = _PACKAGES.get(proto, f"the fsspec implementation of {proto}://")
        raise SourceError(f"{url}: {proto}:// URLs need {package}: pip install {package}") from None
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise SourceError(f"{url}: {first_line(exc)}") from None


def _as_os_error(exc: BaseException) -> OSError:
    """Any storage client's exception as an OSError whose strerror is the row's message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc
    if isinstance(exc, FileNotFoundError):
        return OSError(2, "no such file or directory")
    if isinstance(exc, PermissionError):
        return OSError(13, "permission denied")
    if isinstance(exc, IsADirectoryError):
        return OSError(21, "is a directory")
    return OSError(5, f"cannot read: {first_line(exc)}")


def fetch(url: str, limit: int = MAX_FETCH) -> bytes:
    """The object's bytes (one ranged GET); OSError with a row message when it cannot be read
    or is larger than `limit`."""
    fs, path = filesystem(url)
    try:
        data = fs.cat_file(path, start=0, end=limit + 1)
    except Exception as exc:
        # A ranged GET of an empty object is refused (HTTP 416): ask for its size instead.
        try:
            empty = fs.info(path).get("size") == 0
        except Exception:
            empty = False
        if empty:
            return b""
        raise _as_os_error(exc) from None
    if len(data) > limit:
        raise OSError(27, f"object larger than {limit} bytes: not fetched")
    return bytes(data)


def content_sha256(path: str) -> str | None:
    """sha256 of the content at `path` (a URL is fetched again), or None if it cannot be read."""
    if not is_url(path) or local_path(path) is not None:
        from imgcheck.baseline import content_sha256 as local_sha256

        return local_sha256(local_path(path) or path)
    try:
        return hashlib.sha256(fetch(path)).hexdigest()
    except (OSError, SourceError):
        return None


def check(url: str) -> str | None:
    """Why `url` cannot be scanned at all (a one-line usage message), or None. Like a missing
    local path, a URL that names nothing is a usage error: a typo must not pass a CI gate."""
    local = local_path(url)
    if local is not None:
        if os.path.lexists(local) or (glob.has_magic(local) and glob.glob(local)):
            return None
        return f"no such file or directory: {url}"
    try:
        fs, path = filesystem(url)
        if glob.has_magic(path):
            return None if fs.glob(path) else f"no objects match the pattern {url}"
        if fs.exists(path):
            return None
    except SourceError as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot list {url}: {first_line(exc)}"
    return f"no such object or prefix: {url}"


def _sort_key(rel: str) -> list[str]:
    return rel.split("/")


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def iter_url(
    url: str, *, recursive: bool = True, include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> Iterator[InputItem]:
    """The images one URL names (see the module doc); problems are error items."""
    local = local_path(url)
    if local is not None:
        for item in iter_inputs([local], recursive=recursive, include=include, exclude=exclude):
            yield InputItem("file://" + item.path, item.error)
        return
    try:
        fs, root = filesystem(url)
    except SourceError as exc:
        yield InputItem(url, str(exc))
        return
    filt = _Filter(include, exclude)
    try:
        if glob.has_magic(root):
            matches = sorted(fs.glob(root), key=_sort_key)
            if not matches:
                yield InputItem(url, "no objects match this pattern")
            for match in matches:
                if fs.isdir(match):
                    yield from _listing(fs, match, recursive, filt)
                elif filt.keep_file(match):
                    yield InputItem(fs.unstrip_protocol(match))
            return
        if fs.isfile(root):
            yield InputItem(url)  # named explicitly: always scanned
        elif fs.isdir(root):
            yield from _listing(fs, root, recursive, filt)
        else:
            yield InputItem(url, "no such object or prefix")
    except Exception as exc:  # listing failed (permissions, network): one row, not a traceback
        yield InputItem(url, f"cannot list: {first_line(exc)}")


def _listing(fs: Any, root: str, recursive: bool, filt: _Filter) -> Iterator[InputItem]:
    root = root.rstrip("/")
    found = fs.find(root, maxdepth=None if recursive else 1, withdirs=False)
    rels = []
    for path in found:
        rel = path[len(root) :].lstrip("/") if path.startswith(root) else path
        if not rel or _hidden(rel) or not is_image_name(rel):
            continue
        if filt.exclude and any(filt.skip_dir("/".join(rel.split("/")[: i + 1]))
                                for i in range(rel.count("/"))):  # fmt: skip
            continue
        if filt.keep_file(rel):
            rels.append(rel)
    for rel in sorted(rels, key=_sort_key):
        yield InputItem(fs.unstrip_protocol(f"{root}/{rel}"))


def iter_sources(
    args: Iterable[str],
    *,
    recursive: bool = True,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    stdin: IO[Any] | None = None,
    respect_gitignore: bool = False,
) -> Iterator[InputItem]:
    """`inputs.iter_inputs` that also takes URLs (in argument order; `-` reads local paths)."""
    local: list[str] = []
    for arg in args:
        text = os.fspath(arg)
        if not is_url(text):
            local.append(text)
            continue
        if local:
            yield from iter_inputs(local, recursive=recursive, include=include, exclude=exclude,
                                   stdin=stdin, respect_gitignore=respect_gitignore)  # fmt: skip
            local = []
        yield from iter_url(text, recursive=recursive, include=include, exclude=exclude)
    if local:
        yield from iter_inputs(local, recursive=recursive, include=include, exclude=exclude,
                               stdin=stdin, respect_gitignore=respect_gitignore)  # fmt: skip


__all__ = [
    "MAX_FETCH",
    "SourceError",
    "check",
    "content_sha256",
    "fetch",
    "filesystem",
    "is_url",
    "iter_sources",
    "iter_url",
    "local_path",
]
