"""The daemon: the compositions of the rooms below it.

    commands.py   `updmirror sync` (one sync, then the shared folder) and
                  `updmirror run` (serve, and sync on a schedule)
    schedule.py   when `run` syncs: the interval with jitter, sooner after a
                  failure, at once when woken (`sync_forever(..., wake=)`, by
                  sync/announce.py's watcher of an upper updmirror)
    process.py    each scheduled sync as a child process of its own
                  (`python -m updmirror sync --json`), never a thread of the
                  server's supervisor, which forks workers

Nothing imports this room but the command line.
"""

from .process import SyncOutcome, sync_command, sync_in_child
from .schedule import first_delay, next_delay, sync_forever, sync_once, wait_for_turn

__all__ = ["SyncOutcome", "first_delay", "next_delay", "sync_command", "sync_forever", "sync_in_child",
           "sync_once", "wait_for_turn"]
