"""One sync at a time per store.

flock(2) is released by the kernel when its holder dies, so the lock of a
killed sync is taken over without any stale-lock guessing; the pid written
into the file is only there for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from updmirror.errors import LockedError


class StoreLock:
    def __init__(self, root: Path):
        self.path = Path(root) / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(f"another sync (pid {holder}) is running on the store "
                              f"{self.path.parent}; wait for it to finish, or stop it") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # only for the message above; a full disk must not stop the sync here
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
