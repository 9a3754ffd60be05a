"""How many connections a worker may hold: the configured caps, cut to the
file descriptors the process really has.

Every connection is a descriptor, and one that is sending a module file
holds a second for the file. A cap the descriptors cannot back does not
refuse clients cleanly: accept(2) fails with EMFILE, new clients wait
without an answer, and a file that exists cannot be opened. So the master
lifts the soft RLIMIT_NOFILE to the hard limit, and the cap is lowered to
what that holds, with a warning at start-up that says so: a reserve for the
server itself, room to answer a burst of refused clients, and a quarter of
the rest for files being sent (most connections of a mirror are idle or
reading an index from memory; should more send files at once, the one too
many is answered 503, never 404).
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass

#: Descriptors kept for everything but clients: listening sockets, the event
#: loop, log files, table builds, status pages, the htpasswd file.
RESERVED_FDS = 64
#: Connections beyond the cap accepted at once only to be answered 503 (each
#: holds a descriptor until it is closed, a moment later).
OVERFLOW = 64


@dataclass(frozen=True)
class Capacity:
    """One worker's limits."""

    #: Connections served at once.
    connections: int
    #: ... of them from one client address (an IPv6 /64).
    per_address: int
    #: Connections held at all (served and being refused); accepting pauses at it.
    ceiling: int
    #: The per-worker share of [http] max_connections, when the descriptors cut it.
    lowered_from: int | None


def capacity(max_connections: int, per_address: int, workers: int, open_files: int) -> Capacity:
    """The limits of each of `workers` workers that may each hold `open_files` descriptors."""
    wanted = math.ceil(max_connections / workers)
    fit = max(1, (open_files - RESERVED_FDS - OVERFLOW) * 3 // 4)
    connections = min(wanted, fit)
    address_share = min(max(1, math.ceil(per_address / workers)), connections)
    if connections < wanted:
        # A smaller server than configured: one address still may not take all of it.
        address_share = min(address_share, max(1, connections // 2))
    return Capacity(connections, address_share, connections + OVERFLOW,
                    wanted if connections < wanted else None)


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; the soft limit it is now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass    # e.g. above the kernel's fs.nr_open: keep the soft limit we have
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def open_files_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20
