"""The integrated HTTP server (`updmirror serve`; `updmirror run` is the daemon's).

    master.py     checks the configuration, binds the ports, forks the workers
                  (SO_REUSEPORT), restarts a crashed one, passes on SIGHUP,
                  stops on SIGTERM; runs a schedule coroutine beside them when
                  given one (the daemon's syncs, each its own process)
    worker.py     one serving process: event loop, once-a-second housekeeping,
                  snapshot switches, reload
    protocol.py   one connection: the hot path (asyncio.Protocol, HTTP/1.1)
    httpcore.py   request parsing, ranges, conditionals: pure functions
    tables.py     per snapshot: path -> file entry with rendered headers and,
                  for indexes and small files, the bytes; User-Agent routing
    memo.py       answers to identical request heads within one second
    allow.py      the network allow-list
    basic.py      the Basic realm and challenge (the memory of good checks: auth.py)
    auth.py       passwords: the htpasswd file, bcrypt and the other hashes
    accesslog.py  the combined access log, without credentials
    counters.py   counters shared by the workers, for the status pages
    commands.py   the `serve` and `passwd` sub-commands

/status, /status.json and /metrics are the status room's renderings
(`updmirror.status`) with this server's counters added. This room reads
the store; it imports neither sync/, folder/ nor the daemon.
"""

from __future__ import annotations

from .commands import SERVER_NOTE, add_server_arguments, quiet_access_logger


def serve(cfg, *, workers: int | None = None, schedule=None) -> int:
    """Serve until stopped; the exit code (see master.serve). The server's
    modules load here, not on import: every command imports this package."""
    from .master import serve as run_server

    return run_server(cfg, workers=workers, schedule=schedule)


__all__ = ["SERVER_NOTE", "add_server_arguments", "quiet_access_logger", "serve"]
