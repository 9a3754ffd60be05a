"""Server counters shared by the worker processes, and the shared token
buckets that limit password guesses across them (`Buckets`).

The master process maps one anonymous shared memory block before it forks;
each worker owns one slot and is its only writer, so no locks are needed.
On the hot path a worker only bumps plain attributes of its `Slot`; they
reach shared memory once a second (`Slot.flush`), which is as fresh as a
status page needs. Distinct client addresses are estimated by linear
counting over a bitmap per worker (OR-ed together when read): a few
kilobytes, whatever the number of clients.

`Counters.snapshot()` is the `counters` dict the status module renders:

    started            epoch seconds when the server started
    uptime             seconds since then
    workers            number of worker slots
    connections_open   connections open now
    connections_total  connections accepted since start
    requests_total     requests answered since start
    bytes_sent         response bytes (headers and bodies) since start
    responses          {"1xx": n, "2xx": n, "3xx": n, "4xx": n, "5xx": n}
    clients            distinct client addresses since start (approximate)
    announce_waiting   lower mirrors waiting now for this mirror's next snapshot

Besides the counters, each worker writes a digest of the snapshot it serves
(`Slot.serving`) the moment it switches, so that the worker answering the
lower mirrors' announcement requests can wait until every worker serves the
new snapshot (`Counters.all_serving`) before telling them to sync.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import secrets
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

FIELDS = ("connections_open", "connections_total", "requests_total", "bytes_sent",
          "r1xx", "r2xx", "r3xx", "r4xx", "r5xx", "announce_waiting")
BITMAP_BITS = 1 << 16
_BITMAP_BYTES = BITMAP_BITS // 8
_SLOT_BYTES = len(FIELDS) * 8 + _BITMAP_BYTES
_HEADER = struct.Struct("<dQ")   # started, workers
_DIGEST = struct.Struct("<Q")


def snapshot_digest(snapshot_id: str | None) -> int:
    """The 64 bits a worker writes for the snapshot it serves (0: none)."""
    if snapshot_id is None:
        return 0
    return int.from_bytes(hashlib.blake2b(snapshot_id.encode(), digest_size=8).digest(), "little") or 1


class Counters:
    """The shared block; create it in the master before forking workers."""

    def __init__(self, workers: int, started: float | None = None):
        self.workers = workers
        self._mem = mmap.mmap(-1, _HEADER.size + workers * (_SLOT_BYTES + _DIGEST.size))
        self.started = time.time() if started is None else started
        _HEADER.pack_into(self._mem, 0, self.started, workers)
        #: Password guesses per address (and user), shared by every worker.
        self.guesses = Buckets()

    def slot(self, index: int) -> Slot:
        if not 0 <= index < self.workers:
            raise IndexError(f"worker slot {index} outside 0..{self.workers - 1}")
        return Slot(self._mem, _HEADER.size + index * _SLOT_BYTES,
                    _HEADER.size + self.workers * _SLOT_BYTES + index * _DIGEST.size)

    def all_serving(self, snapshot_id: str | None) -> bool:
        """Whether every worker slot says it serves `snapshot_id` now."""
        want = snapshot_digest(snapshot_id)
        base = _HEADER.size + self.workers * _SLOT_BYTES
        return all(_DIGEST.unpack_from(self._mem, base + i * _DIGEST.size)[0] == want
                   for i in range(self.workers))

    def snapshot(self) -> dict:
        totals = [0] * len(FIELDS)
        bitmap = 0
        for i in range(self.workers):
            base = _HEADER.size + i * _SLOT_BYTES
            values = struct.unpack_from(f"<{len(FIELDS)}Q", self._mem, base)
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            start = base + len(FIELDS) * 8
            bitmap |= int.from_bytes(self._mem[start:start + _BITMAP_BYTES], "little")
        by_name = dict(zip(FIELDS, totals, strict=True))
        now = time.time()
        return {
            "started": self.started,
            "uptime": max(0.0, now - self.started),
            "workers": self.workers,
            "connections_open": by_name["connections_open"],
            "connections_total": by_name["connections_total"],
            "requests_total": by_name["requests_total"],
            "bytes_sent": by_name["bytes_sent"],
            "responses": {f"{c}xx": by_name[f"r{c}xx"] for c in range(1, 6)},
            "clients": estimate_distinct(bitmap.bit_count(), BITMAP_BITS),
            "announce_waiting": by_name["announce_waiting"],
        }


def estimate_distinct(set_bits: int, bits: int) -> int:
    """Linear counting: n ~ -m ln(zero share); saturates gracefully."""
    zeros = bits - set_bits
    if zeros <= 0:
        return int(bits * math.log(bits))
    return round(-bits * math.log(zeros / bits))


class Slot:
    """One worker's counters; plain attributes on the hot path."""

    __slots__ = ("_mem", "_base", "_digest_at", "connections_open", "connections_total", "requests_total",
                 "bytes_sent", "responses", "_bitmap", "announce_waiting")

    def __init__(self, mem: mmap.mmap, base: int, digest_at: int):
        self._mem, self._base, self._digest_at = mem, base, digest_at
        self.connections_open = self.connections_total = self.requests_total = self.bytes_sent = 0
        self.announce_waiting = 0
        self.responses = [0] * 6          # index: status // 100
        self._bitmap = bytearray(_BITMAP_BYTES)

    def saw_client(self, address: str) -> None:
        h = zlib.crc32(address.encode()) % BITMAP_BITS
        self._bitmap[h >> 3] |= 1 << (h & 7)

    def serving(self, snapshot_id: str | None) -> None:
        """Say at once (not at the next flush) which snapshot this worker serves."""
        _DIGEST.pack_into(self._mem, self._digest_at, snapshot_digest(snapshot_id))

    def flush(self) -> None:
        r = self.responses
        struct.pack_into(f"<{len(FIELDS)}Q", self._mem, self._base, self.connections_open,
                         self.connections_total, self.requests_total, self.bytes_sent,
                         r[1], r[2], r[3], r[4], r[5], self.announce_waiting)
        start = self._base + len(FIELDS) * 8
        self._mem[start:start + _BITMAP_BYTES] = self._bitmap


#: One bucket: a key digest (0: never used) and the time it is full again.
_BUCKET = struct.Struct("<Qd")
BUCKETS = 16384
#: Slots looked at for a key: its own and the next few (open addressing).
PROBES = 8


class Buckets:
    """Token buckets in shared memory, one per key, for every worker at once.

    A bucket holds up to `burst` tokens and gains one every `refill`
    seconds; it is stored as the moment it will be full again, so a bucket
    never used and one refilled to the brim look the same and its slot can
    be taken by another key: the table forgets by itself and stays at
    BUCKETS * 16 bytes. Keys are keyed digests (the secret is made before
    the workers fork), so no one can aim a key at another's slot.

    Updates hold a POSIX record lock on an anonymous file: it excludes the
    other worker processes, and the kernel drops it when a holder dies.
    """

    def __init__(self, slots: int = BUCKETS, clock=time.monotonic):
        self._slots = slots
        self._mem = mmap.mmap(-1, slots * _BUCKET.size)
        self._secret = secrets.token_bytes(16)
        self._clock = clock
        self._lock = _anonymous_file()

    def take(self, wants: Sequence[tuple[bytes, int, float]]) -> float:
        """One token from each (key, burst, refill) bucket, all or none.

        0.0 when taken; else the seconds until each of them holds a token.
        """
        with self._locked():
            now = self._clock()
            found = [(self._find(key, now), burst, refill) for key, burst, refill in wants]
            # Tokens at `now`: burst - (full - now) / refill; one is needed.
            wait = max(full - now - (burst - 1) * refill for (_, _, full), burst, refill in found)
            if wait > 0:
                return wait
            for (slot, digest, full), _, refill in found:
                _BUCKET.pack_into(self._mem, slot * _BUCKET.size, digest, max(full, now) + refill)
            return 0.0

    def give(self, wants: Sequence[tuple[bytes, int, float]]) -> None:
        """Put back the token `take` took from each bucket."""
        with self._locked():
            now = self._clock()
            for key, _, refill in wants:
                slot, digest, full = self._find(key, now)
                _BUCKET.pack_into(self._mem, slot * _BUCKET.size, digest, max(now, full - refill))

    def _find(self, key: bytes, now: float) -> tuple[int, int, float]:
        """(slot, digest, when full) of `key`'s bucket. A key without one gets
        a slot whose bucket is full (or, all probed being in use, the one
        closest to full), claimed as full now."""
        digest = int.from_bytes(hashlib.blake2b(key, key=self._secret, digest_size=8).digest(),
                                "little") or 1
        probed = [(digest + i) % self._slots for i in range(PROBES)]
        free = None
        for slot in probed:
            stored, full = _BUCKET.unpack_from(self._mem, slot * _BUCKET.size)
            if stored == digest:
                return slot, digest, full
            if full < now and free is None:   # strictly: one claimed just now is in use
                free = slot
        if free is None:
            free = min(probed, key=lambda slot: _BUCKET.unpack_from(self._mem, slot * _BUCKET.size)[1])
        _BUCKET.pack_into(self._mem, free * _BUCKET.size, digest, now)
        return free, digest, now

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._lock, fcntl.LOCK_UN)


def _anonymous_file() -> int:
    try:
        return os.memfd_create("updmirror-guesses", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        with tempfile.TemporaryFile() as f:
            return os.dup(f.fileno())
