"""When `updmirror run` syncs: every `mirror.interval` with some jitter,
sooner after a failure, and at once when something wakes the schedule.
Whatever a sync does, the served snapshot stays the last good one (the store
only ever switches to a complete snapshot), so a failure here is logged and
retried, never fatal.

Waking early: `sync_forever(..., wake=event)` also syncs as soon as `event`
is set (an `asyncio.Event` of the same loop). A watcher that holds a
long-poll on an upper mirror sets it when that mirror publishes; the timer
stays as the fallback. The loop clears the event just before each sync, so
an announcement that arrives while a sync runs causes one more sync right
after it (that sync may have read the old index), and several announcements
during one wait cause one sync, not several.
"""


from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from updmirror.errors import UpdmirrorError

log = logging.getLogger(__name__)

#: Share of the interval by which the next sync moves, either way, so that
#: many mirrors started together do not all ask upstream at the same second.
JITTER = 0.1
#: A failed sync is retried after interval / RETRY_DIVISOR, but not sooner than MIN_RETRY.
RETRY_DIVISOR = 6
MIN_RETRY = 60.0


def next_delay(ok: bool, interval: float, rand: float, *, min_retry: float = MIN_RETRY) -> float:
    """Seconds until the next sync; `rand` is uniform in [0, 1)."""
    if ok:
        return interval * (1 + JITTER * (2 * rand - 1))
    return min(interval, max(min_retry, interval / RETRY_DIVISOR))


def first_delay(last_snapshot_created: float | None, interval: float,
                now: float | None = None) -> float:
    """Right away when the mirror is empty or older than the interval, else when it will be."""
    if last_snapshot_created is None:
        return 0.0
    now = time.time() if now is None else now
    return max(0.0, min(interval, last_snapshot_created + interval - now))


async def sync_once(sync: Callable[[], Awaitable[Any]]) -> bool:
    """Run one sync; True when it succeeded. Never raises but for cancellation."""
    try:
        report = await sync()
    except asyncio.CancelledError:
        raise
    except UpdmirrorError as exc:
        log.error("sync failed: %s; still serving the last good snapshot", exc)
        return False
    except Exception:
        log.exception("sync failed unexpectedly; still serving the last good snapshot")
        return False
    ok = bool(getattr(report, "ok", True))
    if not ok:
        log.error("sync failed: %s; still serving the last good snapshot",
                  getattr(report, "message", "no reason given"))
    return ok


async def wait_for_turn(stop: asyncio.Event, wake: asyncio.Event | None, delay: float) -> bool:
    """Wait `delay` seconds, or less if `wake` is set; False when `stop` is set first."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(0.0, delay), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return not stop.is_set()


async def sync_forever(sync: Callable[[], Awaitable[Any]], interval: float, stop: asyncio.Event, *,
                       delay: float = 0.0, wake: asyncio.Event | None = None,
                       min_retry: float = MIN_RETRY, rand: Callable[[], float] = random.random) -> None:
    """Sync after `delay` (or when `wake` is set), then on schedule, until `stop` is set."""
    while True:
        if not await wait_for_turn(stop, wake, delay):
            return
        if wake is not None and wake.is_set():
            log.info("woken: syncing now")
            wake.clear()
        ok = await sync_once(sync)
        delay = next_delay(ok, interval, rand(), min_retry=min_retry)
        log.info("next sync in %.0f s%s", delay, "" if ok else " (retrying sooner after a failure)")
