"""The one atomic file writer of imgcheck: reports, colorized images, run-folder files.

A file that a later step (a CI job, a rerun, `export`) reads must be either absent, the old
complete file or the new complete one, never a torn one, even after `kill -9` or a full disk.
So every write goes to a hidden temporary file in the target's own folder (same file system, so
`os.replace` is an atomic rename), is flushed and fsynced, and only then renamed over the
target; on any exception (KeyboardInterrupt included) the temporary file is removed and the
target is untouched. Files get the permissions a plain `open()` would give (the umask applies).

Never replaced, only written through or in place:
- a symlink: the rename goes to the file it points to (resolved), so the link stays a link;
- a device, FIFO or other non-regular file, and any `/dev/...` or `/proc/...` path
  (`-o /dev/null`, `-o /dev/stdout`, a named pipe): written in place, because an atomic rename
  run as root would replace the device node itself.

Temporary names are `.NAME.PID.RANDOM.imgcheck-tmp`; `remove_stale_temps` deletes those whose
writer is gone. Standard library only (the CLI modules import this indirectly at top level).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

TEMP_SUFFIX = ".imgcheck-tmp"


def writes_in_place(path: Path | str) -> bool:
    """True where an atomic rename must not happen: a device, FIFO or other non-regular file
    (after following symlinks), or a path under /dev/ or /proc/ (`/dev/stdout` resolves to a
    `/proc/.../fd/pipe:[...]` name that does not exist as a file)."""
    real = os.path.realpath(path)
    special = os.path.exists(real) and not os.path.isfile(real)
    return special or str(path).startswith("/dev/") or real.startswith("/proc/")


def _create_temp(target: Path) -> tuple[Path, int]:
    # os.open with mode 0o666 lets the umask decide the permissions, like a plain open() would;
    # tempfile.mkstemp would create 0600 files that surprise whoever reads the file later.
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {target}")  # pragma: no cover


@contextlib.contextmanager
def atomic_open(
    path: Path | str,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO]:
    """Yield a stream opened with `open(..., mode, encoding=, newline=)` ("w" or "wb" modes);
    `path` appears (or is replaced) only when the block succeeds. See the module docstring for
    symlinks and special files. A directory raises IsADirectoryError before anything is written."""
    if os.path.isdir(path):  # fail before writing anything, not at the rename
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if writes_in_place(path):
        with open(path, mode, encoding=encoding, newline=newline) as stream:
            yield stream
        return
    target = Path(os.path.realpath(path))
    tmp, fd = _create_temp(target)
    try:
        with open(fd, mode, encoding=encoding, newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Run `write(stream)` on a binary stream through `atomic_open`."""
    with atomic_open(path, "wb") as stream:
        write(stream)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_temps(folders: Iterable[Path]) -> int:
    """Delete temporary files left in `folders` by writers that were killed; returns how many.

    Only our own pattern (`.NAME.PID.RANDOM.imgcheck-tmp`) whose PID is no longer running is
    removed, so a concurrent writer in the same folder keeps its files.
    """
    removed = 0
    for folder in set(folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            parts = name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or _pid_alive(int(parts[1])):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed
