"""Writing a file so that a crash leaves the old one or the new one, never half.

The one recipe, used by every room that replaces a file a reader may open
at any moment (the store's manifests and state, the htpasswd file, the
client's install, the shared folder, the simulated vendor): write a
temporary file in the same folder (a rename is atomic only within one file
system), flush it to disk, rename it over the final name, then flush the
folder so the rename itself survives a power cut.

Also the one-holder lock on a file (flock(2)): the kernel releases the lock
of a killed holder, so no stale-lock guessing; the pid in the file is only
there to name the holder in a message.

Stdlib only and no other updmirror module: every room may import it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["HeldError", "atomic_file", "fsync_path", "hold_lock", "point_symlink", "replace_durably",
           "write_atomically", "write_json", "write_new"]


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(source: str | os.PathLike[str], target: str | os.PathLike[str], *,
                    sync_folder: bool = True) -> None:
    """Rename a finished file over `target`: its data is flushed first, so the
    new name never points at bytes still in the page cache only."""
    fsync_path(source)
    os.replace(source, target)
    if sync_folder:
        fsync_path(Path(target).parent)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, temporary: str | os.PathLike[str] | None = None,
                mode: int | None = None, mtime: float | None = None, durable: bool = True,
                sync_folder: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into; on a clean exit it
    replaces `path` in one rename, on an exception it is removed and `path`
    is as it was.

    `temporary`: the name to write under (default: a hidden name beside
    `path`), for a caller that must find or clean up its own left-overs.
    `mode`: the new file's permissions, set before any byte is written.
    `mtime`: its modification time. `durable=False` skips both flushes: only
    for files that can be made again from nothing (the simulated vendor's).
    `sync_folder=False` leaves the folder's flush to the caller, who may batch
    it over many renames in one folder.
    """
    path = Path(path)
    # Named per process and thread, so two writers of one file never share a
    # temporary; created like any file (the umask applies), unlike mkstemp's 0600.
    tmp = Path(temporary) if temporary is not None else \
        path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    f = open(tmp, "wb")
    try:
        with f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable and sync_folder:
        fsync_path(path.parent)


def write_atomically(path: str | os.PathLike[str], data: bytes | str, **options) -> None:
    """Replace `path` with `data` (str is written as UTF-8); options as atomic_file's."""
    with atomic_file(path, **options) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path: str | os.PathLike[str], value: object, **options) -> None:
    """Replace `path` with `value` as indented, key-sorted JSON."""
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True) + "\n", **options)


def write_new(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file no reader can see yet (inside a folder that one rename will
    publish), flushed to disk: no temporary name needed, the folder's rename is
    the atomic step."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def point_symlink(link: str | os.PathLike[str], target: str, temporary: str | os.PathLike[str]) -> None:
    """Make the symbolic link `link` point at `target` in one rename (a reader
    follows the old target or the new one), then flush its folder. `temporary`:
    the name the new link is made under beside it (a stale one is replaced);
    on failure it is removed and `link` is as it was."""
    link, tmp = Path(link), Path(temporary)
    try:
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(link.parent)


class HeldError(Exception):
    """The lock is held by another process; `holder` is the pid it wrote, or "unknown"."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by pid {holder}")
        self.path = path
        self.holder = holder


def hold_lock(path: str | os.PathLike[str]) -> int:
    """Take the one-holder lock on `path` (created if need be) without waiting,
    and write our pid into it; returns the open descriptor, whose closing
    releases the lock. Raises HeldError when another process holds it, and
    OSError when the file cannot be opened."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise HeldError(path, holder) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # only for the message of the next one to try; a full disk must not stop us here
    return fd
