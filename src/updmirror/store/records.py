"""A record of every sync run, for the status page and `updmirror status`.

`runs.jsonl` holds one JSON object per line. A record is appended with one
write(2); a write that fails (a full disk) is cut off again, and a partial
line that a crash left at the end is cut off before the next record goes
on, so a reader never finds two records merged into one unreadable line
(which would hide the newer one and show an older failure as the last run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from updmirror.files import write_atomically

from .diskerror import disk_error

RUNS_FILE = "runs.jsonl"
KEEP_RUNS = 500
_TAIL = 64 * 1024


def append_run(state_dir: Path, record: dict) -> None:
    """Append `record`; raises StoreError (naming the file) when it cannot be written."""
    path = state_dir / RUNS_FILE
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise disk_error(exc, path) from None
    try:
        keep = _whole_lines(fd)
        try:
            if keep != os.fstat(fd).st_size:
                os.ftruncate(fd, keep)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, keep)    # shrinking needs no space
            raise disk_error(exc, path) from None
    finally:
        os.close(fd)
    _trim(path)


def read_runs(state_dir: Path, limit: int = 50) -> list[dict]:
    """The newest `limit` runs, newest first; unreadable lines are skipped."""
    try:
        lines = (state_dir / RUNS_FILE).read_text("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    runs = []
    for line in reversed(lines):
        try:
            run = json.loads(line)
        except ValueError:
            continue
        if isinstance(run, dict):
            runs.append(run)
        if len(runs) >= limit:
            break
    return runs


def _whole_lines(fd: int) -> int:
    """The length of the file up to its last newline (all of it when it ends with one)."""
    end = os.fstat(fd).st_size
    at = end
    while at > 0:
        start = max(0, at - _TAIL)
        chunk = os.pread(fd, at - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        at = start
    return 0


def _trim(path: Path) -> None:
    """Keep the newest KEEP_RUNS records once there are twice as many; a
    failure only postpones it (the record is already safe)."""
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) <= KEEP_RUNS * 2:
        return
    try:
        write_atomically(path, b"".join(lines[-KEEP_RUNS:]))
    except OSError:
        pass
