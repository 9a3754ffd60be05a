"""One sync at a time per store.

flock(2) is released by the kernel when its holder dies, so the lock of a
killed sync is taken over without any stale-lock guessing (files.hold_lock).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from updmirror.errors import LockedError
from updmirror.files import HeldError, hold_lock


class StoreLock:
    def __init__(self, root: Path):
        self.path = Path(root) / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = hold_lock(self.path)
        except HeldError as exc:
            raise LockedError(f"another sync (pid {exc.holder}) is running on the store "
                              f"{self.path.parent}; wait for it to finish, or stop it") from None

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
