"""`GET /updmirror/announce`: lower mirrors wait here for the next snapshot.

A lower updmirror asks `/updmirror/announce?after=ID&wait=S` with the id of
the snapshot it last heard of. The answer comes at once when this mirror
serves another snapshot, else when it publishes one, else after S seconds
(at most MAX_WAIT) with the same id; either way it is a small JSON document:

    {"snapshot": ID, "published": EPOCH, "mirror": NAME}

and the lower mirror syncs when the id changed. The request goes through
the allow list and authentication like any other.

Why this shape: hundreds of lower mirrors may wait on one upper mirror, so
a waiting request must cost a connection and a few bytes of bookkeeping,
not a task or a timer of its own. Each worker keeps its waiters in a dict
and their deadlines in one heap, and a single timer (every TICK seconds,
only while someone waits or a snapshot is settling) looks at the store's
`current` link, answers the waiters when a snapshot has settled, and
answers the ones whose wait ran out.

A new snapshot is announced once it has *settled*: every worker serves it
(each writes a digest of its snapshot to shared memory when it switches),
or SETTLE_MAX seconds after this worker switched (a worker that is being
restarted must not hold the announcement back). Announced earlier, a lower
mirror could fetch the old index from a worker that has not switched yet,
and would then wait for the release after next.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from updmirror.store.tiers import ANNOUNCE_PATH as _PATH

if TYPE_CHECKING:
    from .httpcore import Request
    from .protocol import Connection
    from .worker import Worker

#: The path lower mirrors ask (beside the tier manifest).
ANNOUNCE_PATH = b"/" + _PATH.encode()
#: Seconds a lower mirror may ask to wait; its client times out a little later.
DEFAULT_WAIT = 25.0
MAX_WAIT = 55.0
#: Seconds between looks at `current` and at the deadlines, while anyone waits.
TICK = 0.25
#: A new snapshot is announced at the latest this long after this worker switched to it.
SETTLE_MAX = 3.0
_TYPE = b"application/json"
_RETRY_LATER = b"Retry-After: 30\r\n"


class Announcements:
    """One worker's waiting lower mirrors."""

    def __init__(self, worker: Worker):
        self.w = worker
        #: conn -> (request, the id it knows, its deadline)
        self.waiting: dict[Connection, tuple[Request, str | None, float]] = {}
        self._deadlines: list[tuple[float, int, Connection]] = []
        self._order = itertools.count()
        #: The snapshot announced: what waiters are told.
        self.announced: tuple[str, float] | None = self._serving()
        #: A snapshot this worker serves that is not announced yet, and since when.
        self._settling: tuple[str, float] | None = None
        self._timer = None

    @property
    def limit(self) -> int:
        """The most this worker holds: its share of [http] announce_waiters (as reloaded)."""
        return math.ceil(self.w.cfg.http.announce_waiters / max(1, self.w.counters.workers))

    # -- requests -----------------------------------------------------------------
    def request(self, conn: Connection, req: Request) -> None:
        """Answer now, or hold the connection until there is news or the wait runs out."""
        after, wait = _query(req.target)
        known = self.announced
        if req.method == b"HEAD" or (known is not None and after != known[0]) or wait <= 0:
            self._answer(conn, req)
            return
        if len(self.waiting) >= self.limit:
            conn._send_error(503, req, close=True, extra=_RETRY_LATER,
                             body=b"503 Service Unavailable: too many lower mirrors are waiting for "
                                  b"announcements ([http] announce_waiters); sync on your schedule\n")
            return
        w = self.w
        deadline = w.clock + min(wait, MAX_WAIT)
        self.waiting[conn] = (req, after, deadline)
        heapq.heappush(self._deadlines, (deadline, next(self._order), conn))
        conn.busy = True
        # The worker's sweep leaves a waiting connection alone: it is answered by then.
        conn.deadline = deadline + 10.0
        self._schedule()

    def forget(self, conn: Connection) -> None:
        """The connection closed while it waited."""
        self.waiting.pop(conn, None)

    def hung_up(self, conn: Connection) -> bool:
        """The peer closed its side: True (and forgotten) when it was waiting here."""
        if self.waiting.pop(conn, None) is None:
            return False
        conn.busy = False
        return True

    def release_all(self) -> None:
        """The server is stopping: everyone gets the snapshot as it stands."""
        for conn in list(self.waiting):
            self._release(conn)

    # -- news ------------------------------------------------------------------------
    def switched(self) -> None:
        """This worker serves a new snapshot: announce it once it has settled."""
        serving = self._serving()
        if serving is None or (self.announced is not None and serving[0] == self.announced[0]):
            self._settling = None
            return
        self._settling = (serving[0], self.w.clock)
        self._settle()
        self._schedule()

    def _settle(self) -> None:
        if self._settling is None:
            return
        snapshot_id, since = self._settling
        if not (self.w.counters.all_serving(snapshot_id) or self.w.clock - since >= SETTLE_MAX):
            return
        self._settling = None
        self.announced = self._serving()
        news = self.announced[0] if self.announced else None
        for conn, (_, after, _) in list(self.waiting.items()):
            if after != news:
                self._release(conn)

    def _tick(self) -> None:
        self._timer = None
        w = self.w
        if w.stopping:
            return
        w.clock = time.monotonic()
        if self.waiting:
            w._check_snapshot()      # one readlink: notice a publish within TICK
        self._settle()
        heap = self._deadlines
        while heap and heap[0][0] <= w.clock:
            _, _, conn = heapq.heappop(heap)
            held = self.waiting.get(conn)
            if held is not None and held[2] <= w.clock:
                self._release(conn)
        if len(heap) > 2 * len(self.waiting) + 64:
            # Deadlines of connections that closed or were answered: drop them.
            self._deadlines = [d for d in heap if d[2] in self.waiting]
            heapq.heapify(self._deadlines)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None and (self.waiting or self._settling) and not self.w.stopping:
            self._timer = self.w.loop.call_later(TICK, self._tick)

    # -- answers ---------------------------------------------------------------------
    def _release(self, conn: Connection) -> None:
        held = self.waiting.pop(conn, None)
        if held is None or conn.closing:
            return
        conn.busy = False
        self._answer(conn, held[0])
        if not conn.closing:
            conn._continue()

    def _answer(self, conn: Connection, req: Request) -> None:
        known = self.announced
        body = json.dumps({"snapshot": known[0] if known else None,
                           "published": known[1] if known else None,
                           "mirror": self.w.cfg.mirror.name}).encode() + b"\n"
        conn.send_fresh(req, _TYPE, body)

    def _serving(self) -> tuple[str, float] | None:
        current = self.w.tables.current
        return (current.id, current.created) if current is not None else None


def _query(target: bytes) -> tuple[str | None, float]:
    """`after` (None when absent) and `wait` (seconds) of the request target."""
    q = target.find(b"?")
    if q < 0:
        return None, DEFAULT_WAIT
    try:
        params = parse_qs(target[q + 1:].decode("ascii"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None, 0.0
    after = params.get("after", [None])[0] or None
    try:
        wait = float(params.get("wait", [DEFAULT_WAIT])[0])
    except ValueError:
        wait = 0.0
    if not math.isfinite(wait):
        wait = 0.0
    return after, max(0.0, wait)
