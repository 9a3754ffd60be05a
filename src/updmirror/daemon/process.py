"""One scheduled sync in a child process of its own.

`updmirror run`'s supervisor forks (and re-forks) the serving workers; a
sync running as threads inside it could be caught half-done by a fork, and a
sync that leaks memory or wedges would stay in the server's process. So each
sync is `python -m updmirror sync -c CONFIG --json`, a fresh interpreter
(exec, not fork): it takes the store's lock, syncs, publishes to [folder]
when set, writes its run record and exits. Its log lines go to the daemon's
standard error as they come; its summary comes back as JSON on a pipe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from updmirror.errors import UpdmirrorError

log = logging.getLogger(__name__)

#: Seconds a sync child has to stop after SIGTERM (the daemon is stopping) before SIGKILL.
STOP_GRACE = 10.0
#: The summary is a few kilobytes; a child that prints more is not a sync.
MAX_SUMMARY = 16 << 20


@dataclass
class SyncOutcome:
    """What `daemon.schedule.sync_once` needs of a sync: did it work, and why not."""

    ok: bool
    message: str
    exit_code: int
    summary: dict | None = None


def sync_command(config: Path | str, *, debug: bool = False, quiet: bool = False) -> list[str]:
    """The child's command line: the same interpreter and package as the
    daemon, and its verbosity (--debug, -q)."""
    verbosity = ["--debug"] if debug else ["-q"] if quiet else []
    return [sys.executable, "-m", "updmirror", *verbosity, "sync", "-c", os.path.abspath(config), "--json"]


async def sync_in_child(config: Path | str, *, debug: bool = False, quiet: bool = False) -> SyncOutcome:
    """Run one `updmirror sync` (and its folder publish) as a child process.

    Raises UpdmirrorError when the child gives no summary (a configuration
    error, the store locked by another sync, a crash): its own error line is
    already on standard error.
    """
    proc = await asyncio.create_subprocess_exec(
        *sync_command(config, debug=debug, quiet=quiet), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=None)
    try:
        out = await _read_all(proc.stdout)
        code = await proc.wait()
    except asyncio.CancelledError:
        await _stop(proc)
        raise
    try:
        summary = json.loads(out) if out.strip() else None
    except ValueError:
        summary = None
    if not isinstance(summary, dict):
        raise UpdmirrorError(f"the sync process exited with code {code} without a summary "
                             "(its error is logged above)")
    ok = bool(summary.get("ok")) and code in (0, 1)
    message = str(summary.get("message") or f"exit code {code}")
    return SyncOutcome(ok=ok, message=message, exit_code=code, summary=summary)


async def _read_all(stream: asyncio.StreamReader) -> bytes:
    """Everything until end of file (`read(n)` returns what has arrived so far),
    at most MAX_SUMMARY bytes: the rest is drained, so the child never blocks."""
    chunks, size = [], 0
    while chunk := await stream.read(1 << 16):
        if size < MAX_SUMMARY:
            chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_SUMMARY]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """The daemon is stopping: let the sync stop (an interrupted sync changes
    nothing clients see, and the next one resumes), then make sure it did."""
    if proc.returncode is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)
    except ProcessLookupError:
        return
    except (asyncio.TimeoutError, asyncio.CancelledError):
        log.warning("the sync process (pid %d) did not stop in time; killing it", proc.pid)
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        await proc.wait()
