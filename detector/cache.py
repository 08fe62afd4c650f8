"""The scan cache: an image scanned before, with the same model and settings, is not scanned again.

`imgcheck scan PATHS --cache DIR` (or `cache = "DIR"` in the config) keeps every finished row in
`DIR/scan-cache.sqlite`, keyed by the file's **content** (sha256) and by everything that decides
a row: imgcheck's version, the detector (sha256, variant), threshold, view, cascade, pixel
limit and minimum side. A rerun over a catalog where little changed decodes only what is new or
changed, so a CI gate on image assets, or a nightly scan of a catalog that grows, costs what
changed rather than what is there.

- Content, not names or times: a renamed, moved or freshly checked-out image (git gives every
  file a new mtime) is a hit; an image replaced under the same name is a miss. So that a rerun
  need not read every file, a second table remembers each path's (size, mtime, inode) and the
  sha256 read at that signature; a file whose signature changed is read and hashed again. A
  row is stored only if the file's signature is the same after its scan as when it was hashed.
- Only rows its content decides are kept (ok, grayscale, too_small); errors (unreadable files,
  permissions, the memory limit) are scanned again every time.
- Opt-in: nothing is written unless --cache is given, and only inside that folder. The cache
  holds rows, never pixels. A database that cannot be read or is not ours is reported, and the
  scan runs without it: a broken cache never fails a gate.
- Local files only (URLs are always scanned), the local engine only, and not for the HTML
  report (its thumbnails and heatmaps need the pixels).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from imgcheck.inputs import InputItem
from imgcheck.results import ScanResult, Stage, Status, Verdict

FILE = "scan-cache.sqlite"
FORMAT = 1
KEPT = (Status.OK, Status.GRAYSCALE, Status.TOO_SMALL)
COMMIT_EVERY = 256  # rows (or file signatures) per transaction: memory stays flat, a kill loses few

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    scan TEXT NOT NULL, sha256 TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (scan, sha256)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, sha256 TEXT NOT NULL
) WITHOUT ROWID;
"""

Signature = tuple[int, int, int]  # size, mtime_ns, inode
Key = tuple[str, Signature, str]  # sha256, signature, real path: what a row is stored under


class CacheError(ValueError):
    """--cache names something that cannot be a cache folder (exit 2, one line)."""


def scan_key(settings: dict[str, Any]) -> str:
    """One digest of everything that decides a row (see the module doc)."""
    text = json.dumps({"cache_format": FORMAT, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _signature(path: str) -> Signature | None:
    """(size, mtime_ns, inode) of a regular file, or None (missing, a folder, a FIFO)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _to_row(result: ScanResult) -> str:
    return json.dumps(
        {
            "status": result.status.value,
            "score": result.score,
            "verdict": result.verdict.value,
            "width": result.width,
            "height": result.height,
            "format": result.format,
            "error": result.error,
            "stage": None if result.stage is None else result.stage.value,
        }
    )


def _from_row(path: str, sha256: str, text: str) -> ScanResult:
    data = json.loads(text)
    return ScanResult(
        path,
        Status(data["status"]),
        score=data["score"],
        verdict=Verdict(data["verdict"]),
        width=data["width"],
        height=data["height"],
        format=data["format"],
        error=data["error"],
        stage=None if data["stage"] is None else Stage(data["stage"]),
        sha256=sha256,
    )


class ScanCache:
    """Open with `ScanCache.open`; `merge(items, run)` around the engine's `run`; `close()`."""

    def __init__(self, conn: sqlite3.Connection, key: str) -> None:
        self.conn = conn
        self.key = key
        self.hits = 0
        self.stored = 0
        self._rows: list[tuple[str, str, str]] = []
        self._files: dict[str, tuple[Signature, str]] = {}

    @classmethod
    def open(cls, folder: Path, settings: dict[str, Any]) -> tuple[ScanCache | None, str | None]:
        """(the cache, None), or (None, why it is not used) for a database we cannot use.
        Raises CacheError when `folder` cannot be a folder at all (a usage error)."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise CacheError(f"--cache {folder}: not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"--cache {folder}: cannot create it: {exc.strerror or exc}") from None
        db = folder / FILE
        if db.is_symlink() or (db.exists() and not db.is_file()):
            return None, f"{db} is not a regular file; the scan runs without the cache"
        existed = db.exists()
        try:
            conn = sqlite3.connect(db, timeout=30.0)
        except sqlite3.Error as exc:
            return None, f"cannot open {db} ({exc}); the scan runs without the cache"
        try:
            if existed:  # ours only if it says so: another program's database is not touched
                got = conn.execute(
                    "SELECT value FROM meta WHERE key = 'imgcheck_scan_cache'"
                ).fetchone()
            else:
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('imgcheck_scan_cache', ?)", (str(FORMAT),)
                )
                conn.commit()
                got = (str(FORMAT),)
        except sqlite3.Error as exc:
            if not existed:  # a folder we may not write to, a full disk
                conn.close()
                return None, f"cannot create {db} ({exc}); the scan runs without the cache"
            got = None
        if got is None or got[0] != str(FORMAT):
            conn.close()
            what = "not an imgcheck scan cache" if got is None else f"of cache format {got[0]}"
            return None, f"{db} is {what}; the scan runs without the cache (left as it is)"
        return cls(conn, scan_key(settings)), None

    # -- lookups (the calling thread only: sqlite connections are not shared) ------------

    def _key(self, path: str) -> Key | None:
        from imgcheck.baseline import content_sha256

        sig = _signature(path)
        if sig is None:
            return None
        real = os.path.realpath(path)
        known = self.conn.execute(
            "SELECT size, mtime_ns, ino, sha256 FROM files WHERE path = ?", (real,)
        ).fetchone()
        if known is not None and tuple(known[:3]) == sig:
            return known[3], sig, real
        digest = content_sha256(path)
        return (digest, sig, real) if digest else None

    def lookup(self, item: InputItem) -> tuple[ScanResult | None, Key | None]:
        """(the cached row, None) on a hit; (None, what to store it under) on a miss."""
        from imgcheck.sources import is_url

        if item.error is not None or is_url(item.path):
            return None, None
        key = self._key(item.path)
        if key is None:
            return None, None
        digest, sig, real = key
        row = self.conn.execute(
            "SELECT row FROM rows WHERE scan = ? AND sha256 = ?", (self.key, digest)
        ).fetchone()
        if row is None:
            return None, key
        self._files[real] = (sig, digest)
        if len(self._files) >= COMMIT_EVERY:  # a checkout's rerun: every signature is new
            self.flush()
        return _from_row(item.path, digest, row[0]), None

    def store(self, result: ScanResult, key: Key | None) -> None:
        """Keep `result` if its content decided it and its file did not change meanwhile."""
        if key is None or result.status not in KEPT:
            return
        digest, sig, real = key
        if _signature(result.path) != sig:  # rewritten while it was scanned: not this content
            return
        result.sha256 = result.sha256 or digest
        self._rows.append((self.key, digest, _to_row(result)))
        self._files[real] = (sig, digest)
        if len(self._rows) >= COMMIT_EVERY or len(self._files) >= COMMIT_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self._rows and not self._files:
            return
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", self._rows)
                self.conn.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                    [(p, *sig, digest) for p, (sig, digest) in self._files.items()],
                )
            self.stored += len(self._rows)
        except sqlite3.Error:
            pass  # a full disk or a locked database: the rows are simply scanned next time
        self._rows.clear()
        self._files.clear()

    def merge(
        self,
        items: Iterable[InputItem],
        run: Callable[[Iterable[InputItem]], Iterable[ScanResult]],
    ) -> Iterator[ScanResult]:
        """Rows for `items` in their order: cached ones from here, the others from `run`
        (which gets only those and yields in its input order), stored as they come."""
        from imgcheck.bounded import merge_known

        keys: deque[Key | None] = deque()  # the misses', in run's order

        def known(item: InputItem) -> ScanResult | None:
            try:
                row, key = self.lookup(item)
            except sqlite3.ProgrammingError:
                raise  # a misuse of the connection is a bug, not a cache to skip
            except sqlite3.Error:  # locked or damaged: this image is simply scanned
                row, key = None, None
            if row is None:
                keys.append(key)
            return row

        def hit(_: ScanResult) -> None:
            self.hits += 1

        def fresh(result: ScanResult) -> None:
            self.store(result, keys.popleft())

        try:
            yield from merge_known(items, known, run, on_known=hit, on_fresh=fresh)
        finally:
            self.flush()

    def close(self) -> None:
        self.flush()
        self.conn.close()


__all__ = ["FILE", "CacheError", "ScanCache", "scan_key"]
