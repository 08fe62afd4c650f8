"""The one atomic file writer of imgcheck: reports, colorized images, run-folder files.

A file that a later step (a CI job, a rerun, `export`) reads must be either absent, the old
complete file or the new complete one, never a torn one, even after `kill -9` or a full disk.
So every write goes to a hidden temporary file in the target's own folder (same file system, so
`os.replace` is an atomic rename); at the end the stream is flushed, the bytes on disk are
checked against the bytes written (a short write is an error, never a silently truncated
file), the file is fsynced, renamed over the target and the folder is fsynced. On any exception
(KeyboardInterrupt, SIGTERM through `cli_common.signals_as_interrupt`, ENOSPC, EIO) the
temporary file is removed and the target is untouched.

The writer's own stream sits between the caller and the file descriptor: every `write` is
checked (a short `os.write` is retried, an error raised), and it has no `fileno()`, so encoders
that would otherwise write to the descriptor behind our back (Pillow does) go through it too.

Temp and rename happen relative to a descriptor of the target's folder (`dir_fd`), so the folder
checked is the folder written. With `root=` (colorize's OUTDIR) every folder from `root` down is
opened with `O_NOFOLLOW` and the target itself must not be a symlink: a symlink created in the
output tree after planning can neither redirect the write outside `root` nor be written through
(`os.replace` never follows the final component). Without `root`:
- a symlink target is written through: the rename goes to the file it points to (resolved), so
  the link stays a link;
- a device, FIFO or other non-regular file, and any `/dev/...` or `/proc/...` path
  (`-o /dev/null`, `-o /dev/stdout`, a named pipe): written in place, because an atomic rename
  run as root would replace the device node itself.

A replaced file keeps its permission bits; a file without any write bit (0444) is refused with
PermissionError instead of being replaced, even for root. A new file gets the permissions a
plain `open()` would give (the umask applies).

Temporary names are `.NAME.PID.RANDOM.imgcheck-tmp`; `remove_stale_temps` deletes those whose
writer is gone. Standard library only (the CLI modules import this indirectly at top level).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

TEMP_SUFFIX = ".imgcheck-tmp"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def writes_in_place(path: Path | str) -> bool:
    """True where an atomic rename must not happen: a device, FIFO or other non-regular file
    (after following symlinks), or a path under /dev/ or /proc/ (`/dev/stdout` resolves to a
    `/proc/.../fd/pipe:[...]` name that does not exist as a file)."""
    real = os.path.realpath(path)
    special = os.path.exists(real) and not os.path.isfile(real)
    return special or str(path).startswith("/dev/") or real.startswith("/proc/")


class _CheckedFile(io.RawIOBase):
    """The temp file's descriptor as a raw stream whose every write is complete or raises.

    Tracks the furthest byte written, which the file's size must equal before the rename.
    `fileno()` is unsupported on purpose (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.end = 0
        self.error: OSError | None = None  # the first failed write, even if a caller hid it

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            try:
                n = os.write(self._fd, view[done:])
            except OSError as exc:
                self.error = self.error or exc
                raise
            if n <= 0:  # pragma: no cover - POSIX raises instead; be safe anyway
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += n
        self.end = max(self.end, self.tell())
        return done

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def _create_temp(dir_fd: int, name: str) -> tuple[str, int]:
    # os.open with mode 0o666 lets the umask decide the permissions, like a plain open() would;
    # tempfile.mkstemp would create 0600 files that surprise whoever reads the file later.
    for _ in range(100):
        tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW
        try:
            return tmp, os.open(tmp, flags, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {name}")  # pragma: no cover


def _open_folder_under(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of `root/parts...`, every component below `root` created if missing and
    opened with O_NOFOLLOW (a symlink or non-folder there raises OSError naming it)."""
    fd = os.open(root, os.O_RDONLY | _O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                where = root.joinpath(*parts[: i + 1])
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(
                        exc.errno,
                        "is a symlink or not a folder; refusing to write through it",
                        str(where),
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _locate(path: Path | str, root: Path | str | None) -> tuple[int, str, str]:
    """(folder descriptor, file name, display path) for the target."""
    if root is None:
        target = Path(os.path.realpath(path))
        return os.open(target.parent, os.O_RDONLY | _O_DIRECTORY), target.name, str(target)
    root = Path(root)
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        raise ValueError(f"{path} is not inside {root}") from None
    if not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise ValueError(f"{path} is not a plain path inside {root}")
    return _open_folder_under(root, rel.parts[:-1]), rel.name, str(path)


def _existing_mode(dir_fd: int, name: str, shown: str, *, follow: bool) -> int | None:
    """Permission bits of the file being replaced (None if there is none); refuses read-only
    files, and in `root` mode (`follow=False`) symlinks and non-regular files."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "is a symlink; refusing to write through it", shown)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EEXIST, "exists and is not a regular file", shown)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o222:
        raise PermissionError(errno.EACCES, "read-only file; refusing to replace it", shown)
    return mode


@contextlib.contextmanager
def atomic_open(
    path: Path | str,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    root: Path | str | None = None,
) -> Iterator[IO]:
    """Yield a stream opened like `open(..., mode, encoding=, newline=)` ("w" or "wb" modes);
    `path` appears (or is replaced) only when the block succeeds and every byte reached the
    file. `root`: `path` must lie inside this (resolved) folder and nothing from there down may
    be a symlink (see the module docstring). A directory raises IsADirectoryError before
    anything is written."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), not {mode!r}")
    if root is None and os.path.isdir(path):  # fail before writing anything, not at the rename
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if root is None and writes_in_place(path):
        with open(path, mode, encoding=encoding, newline=newline) as stream:
            yield stream
        return
    dir_fd, name, shown = _locate(path, root)
    tmp = None
    try:
        keep_mode = _existing_mode(dir_fd, name, shown, follow=root is None)
        tmp, fd = _create_temp(dir_fd, name)
        raw = _CheckedFile(fd)
        try:
            if keep_mode is not None:
                os.fchmod(fd, keep_mode)
            buffered = io.BufferedWriter(raw)
            stream: IO = (
                buffered
                if mode == "wb"
                else io.TextIOWrapper(buffered, encoding=encoding, newline=newline)
            )
            try:
                yield stream
                stream.flush()
            except Exception as exc:
                # Encoders may turn ENOSPC into their own message without an errno (Pillow:
                # "broken data stream"): the disk's error is the one worth reporting.
                if raw.error is not None and exc is not raw.error:
                    raise raw.error from exc
                raise
            if raw.error is not None:  # a failed write that the caller swallowed
                raise raw.error
            size = os.fstat(fd).st_size
            if size != raw.end:
                raise OSError(
                    errno.EIO, f"short write: {size} of {raw.end} bytes reached the disk", shown
                )
            os.fsync(fd)
        finally:
            # Close the layers without a second flush of data that already failed to write.
            with contextlib.suppress(Exception):
                raw.close()
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
        _fsync_folder(dir_fd)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
        raise
    finally:
        os.close(dir_fd)


def _fsync_folder(dir_fd: int) -> None:
    """Make the rename itself durable; some file systems cannot fsync a folder (EINVAL)."""
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise


def atomic_write(
    path: Path | str, write: Callable[[BinaryIO], None], *, root: Path | str | None = None
) -> None:
    """Run `write(stream)` on a binary stream through `atomic_open`."""
    with atomic_open(path, "wb", root=root) as stream:
        write(stream)  # type: ignore[arg-type]


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

    Only our own pattern (`.NAME.PID.RANDOM.imgcheck-tmp`, a regular file) whose PID is no
    longer running is removed, so a concurrent writer in the same folder keeps its files.
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
                if not entry.is_file(follow_symlinks=False):
                    continue
                os.unlink(entry.path)
                removed += 1
    return removed
