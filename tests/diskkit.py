"""A small real filesystem for disk-fault tests: a tmpfs with a size, mounted
for the test (root only), and a filler that leaves it as full as asked."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tools

PAGE = 4096


def need(reason: str) -> None:
    """Skip, except in CI, where .ci/run runs as root and a test that cannot set
    itself up must fail rather than pass unnoticed (tools.missing)."""
    tools.missing(reason)


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "16m") mounted at `where` for the duration."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        need(f"cannot mount a tmpfs for the disk tests (root needed): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(where: Path, leave: int = 0) -> Path:
    """Write a filler file into the filesystem of `where` until it is full,
    then give back `leave` bytes (whole pages). Returns the filler."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, PAGE):
            block = b"\0" * chunk
            while True:
                try:
                    if os.write(fd, block) < chunk:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - size % PAGE - leave))
    finally:
        os.close(fd)
    return filler


def free_bytes(where: Path) -> int:
    st = os.statvfs(where)
    return st.f_bavail * st.f_frsize


def limit_inodes(where: Path, spare: int) -> None:
    """Let the tmpfs at `where` hold only `spare` more files, folders or links."""
    st = os.statvfs(where)
    used = st.f_files - st.f_ffree
    done = subprocess.run(["mount", "-o", f"remount,nr_inodes={used + spare}", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        need(f"cannot remount the test's tmpfs with fewer inodes: {done.stderr.strip()}")


def inject(*rules: str, path: str | None = None) -> tuple[str, ...]:
    """A command prefix that runs a process (and its children) with system calls
    failing as `rules` say, e.g. "fsync:error=EIO" or "sendfile:error=EIO:when=1..3"
    (strace's fault injection: the real call is replaced by the error). With `path`,
    only calls on that file fail."""
    tools.require_tool("strace", "apt-get install strace; the EIO tests inject errors with it")
    calls = sorted({rule.split(":", 1)[0] for rule in rules})
    prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={','.join(calls)}"]
    if path is not None:
        prefix += ["-P", path]
    else:
        prefix.append("--seccomp-bpf")
    for rule in rules:
        prefix += ["-e", f"inject={rule}"]
    return (*prefix, "--")
