"""What a failed write under the store means to an administrator.

A full disk or a failing one is not a bug to show as a traceback: it is one
line that names the file, says what the system said, and what to do.
"""

from __future__ import annotations

import errno
from pathlib import Path

from updmirror.errors import StoreError

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_error(exc: OSError, path: str | Path | None = None) -> StoreError:
    """A StoreError for `exc`, met writing `path` (default: the file the error names)."""
    where = path if path is not None else (exc.filename or "the store")
    said = exc.strerror or str(exc)
    if exc.errno in _FULL:
        hint = "the store's disk is full: free space there (or mirror fewer trees) and sync again"
    elif exc.errno == errno.EIO:
        hint = "the disk under the store may be failing: look at the kernel log (dmesg)"
    elif exc.errno == errno.EROFS:
        hint = "the store's filesystem is mounted read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = "run as the store's owner (the updmirror user)"
    else:
        hint = "check the store's disk"
    return StoreError(f"{where}: {said}; {hint}")


def is_disk_error(exc: BaseException) -> bool:
    """An OSError about the disk itself, which every other write would meet too."""
    return isinstance(exc, OSError) and exc.errno in _FULL | {errno.EIO, errno.EROFS}
