"""Opening an input file for reading without ever blocking on, or following, what was swapped in.

A scan stats a path and opens it later; in between, a hostile or unlucky folder can replace the
file with a FIFO (a plain `open()` then waits forever for a writer), a device or a symlink.
`open_regular` therefore opens first, with `O_NONBLOCK` (a FIFO opens at once instead of
waiting) and, where the caller asks, `O_NOFOLLOW`, then decides on `fstat` of the open
descriptor: what is read is exactly what was checked. Anything but a regular file raises
`NotRegularFile` (an OSError whose strerror is the row's message). Standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import BinaryIO

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class NotRegularFile(OSError):
    """The path is a FIFO, socket, device or folder (strerror says which kind, for the row)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> BinaryIO:
    """`open(path, "rb")` for a regular file only, never blocking (see the module docstring)."""
    flags = _FLAGS | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise NotRegularFile(code, _kind(st.st_mode), os.fspath(path))
        # Regular files ignore O_NONBLOCK, but the flag must not leak into later reads anyway.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
