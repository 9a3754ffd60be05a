"""The integrated HTTP server (`updmirror serve`, `updmirror run`).

    master.py     checks the configuration, binds the ports, forks the workers
                  (SO_REUSEPORT), restarts a crashed one, passes on SIGHUP,
                  stops on SIGTERM; runs the sync schedule for `run`
    worker.py     one serving process: event loop, once-a-second housekeeping,
                  snapshot switches, reload
    protocol.py   one connection: the hot path (asyncio.Protocol, HTTP/1.1)
    httpcore.py   request parsing, ranges, conditionals: pure functions
    tables.py     per snapshot: path -> file entry with rendered headers and,
                  for indexes and small files, the bytes; User-Agent routing
    memo.py       answers to identical request heads within one second
    allow.py      the network allow-list
    basic.py      the Basic realm and challenge (the memory of good checks: auth.py)
    accesslog.py  the combined access log, without credentials
    counters.py   counters shared by the workers, for the status pages
    schedule.py   when `run` syncs
    commands.py   the `serve` and `run` sub-commands
    auth.py, status.py, status_page.py, status_commands.py: passwords, the
                  status page, JSON and metrics, `status` and `passwd`
"""
