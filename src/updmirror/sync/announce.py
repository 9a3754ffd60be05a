"""Waking `updmirror run`'s schedule when the upper mirror publishes.

When [upstream] is another updmirror over HTTP, the watcher holds one
request open on its `/updmirror/announce` (serve/announce.py), with the id
of the last snapshot it heard of, and sets the schedule's wake event when
the answer names another one, after a random pause of up to
[upstream] announce_jitter seconds so that the hundreds of lower mirrors
of one upper mirror do not all fetch in the same millisecond. The timer of
[mirror] interval stays: the watcher only ever makes a sync come sooner.

An upstream without announcements (the vendor, a product's mirror, an older
updmirror) answers 404 or a page that is not one: the watcher says so once
and asks again every REPROBE seconds. Once a sync has found that the
upstream publishes no tier manifest (state/tier.json), the watcher does not
ask at all (the vendor sees no requests for a path it does not have) and
looks at that record again every REPROBE seconds. Refused credentials and failures wait
with backoff (the scheduled sync reports them in full); nothing here is fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from updmirror import redact
from updmirror.config import Config
from updmirror.store import Store
from updmirror.store.tiers import ANNOUNCE_PATH
from updmirror.upstream import AuthError, NotFoundError, UpstreamError
from updmirror.upstream.backoff import backoff_delay

from .tiers import upper_is_updmirror

log = logging.getLogger(__name__)

#: Seconds the upper mirror is asked to hold each request (it answers sooner on news).
WAIT = 25.0
#: Seconds before asking again an upstream that has no announcements.
REPROBE = 1800.0
#: Backoff after failures: from about a second up to this many seconds.
MAX_BACKOFF = 300.0
#: An announcement is a hundred bytes; anything much longer is not one.
MAX_BYTES = 4096
#: An answer sooner than this that brings no news comes from a server that
#: does not hold requests: wait this long before the next one.
MIN_ROUND = 1.0


def announce_url(cfg: Config) -> str | None:
    """Where to wait for announcements, or None when this upstream cannot have them."""
    up = cfg.upstream
    if up.announce == "off" or up.layout == "product-mirror":
        return None
    if urlsplit(up.url).scheme not in ("http", "https"):
        return None
    return up.url + ANNOUNCE_PATH


class AnnounceWatcher:
    """Sets `wake` when the upper mirror announces a snapshot not heard of before.

    `last_synced()`: when this mirror's newest snapshot was made (None: it has
    none); the first answer wakes the schedule only for a snapshot published
    after it.
    """

    def __init__(self, cfg: Config, wake: asyncio.Event, *, last_synced: Callable[[], float | None],
                 rand: Callable[[], float] = random.random, wait: float = WAIT,
                 reprobe: float = REPROBE):
        url = announce_url(cfg)
        if url is None:
            raise ValueError("this upstream has no announcements")
        self.cfg = cfg
        self.url = url
        self.shown = redact.url(url)
        self.wake = wake
        self.last_synced = last_synced
        self.rand = rand
        self.wait = wait
        self.reprobe = reprobe
        #: The id of the upper mirror's snapshot last heard of (None: nothing heard yet).
        self.heard: str | None = None
        self.announcements = 0
        self._said_not = False

    async def run(self, stop: asyncio.Event) -> None:
        from updmirror.upstream import HttpUpstream

        upstream = HttpUpstream(self.cfg.upstream)
        # Stopping must not wait for the upper mirror to answer a held request.
        watching = asyncio.create_task(self._watch(upstream, stop))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({watching, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watching, stopped):
                task.cancel()
            try:
                await asyncio.gather(watching, stopped, return_exceptions=True)
            finally:
                # The daemon stopping may cancel this task again while it waits
                # here: the session is closed all the same.
                await asyncio.shield(upstream.close())
        if not watching.cancelled() and watching.exception() is not None:
            raise watching.exception()

    def _not_an_updmirror(self) -> bool:
        """Whether the last sync found no tier manifest upstream (said once)."""
        if upper_is_updmirror(Store(self.cfg.mirror.root), self.cfg.upstream.url) is not False:
            self._said_not = False
            return False
        if not self._said_not:
            log.info("%s publishes no tier manifest (the vendor, or a product's mirror): not asking it for "
                     "announcements; syncing on the schedule of [mirror] interval", redact.url(self.cfg.upstream.url))
            self._said_not = True
        return True

    async def _watch(self, upstream, stop: asyncio.Event) -> None:
        failures = 0
        first = True
        while not stop.is_set():
            if first and self._not_an_updmirror():
                await _sleep(stop, self.reprobe)
                continue
            target = self.url + (f"?after={quote(self.heard, safe='')}&wait={self.wait:g}"
                                 if self.heard else f"?wait={self.wait:g}")
            started = time.monotonic()
            try:
                body = await upstream.long_poll(target, self.wait, MAX_BYTES)
                news = _parse(body)
                if news is None:
                    raise NotFoundError(f"{self.shown}: the answer is not an updmirror announcement")
            except NotFoundError:
                log.info("%s: the upstream has no announcements (not an updmirror, or an older one); "
                         "syncing on the schedule of [mirror] interval, asking again in %.0f min",
                         self.shown, self.reprobe / 60)
                await _sleep(stop, self.reprobe)
                first = True
                continue
            except UpstreamError as exc:
                delay = backoff_delay(failures, cap=MAX_BACKOFF)
                failures += 1
                level = logging.WARNING if isinstance(exc, AuthError) or failures == 3 else logging.INFO
                log.log(level, "waiting for the upper mirror's announcements failed: %s; asking again "
                        "in %.0f s (the scheduled sync goes on regardless)", exc, delay)
                await _sleep(stop, delay)
                continue
            if failures >= 3:
                log.info("%s: hearing the upper mirror's announcements again", self.shown)
            failures = 0
            snapshot, published = news
            changed = snapshot is not None and snapshot != self.heard
            if changed and first:
                # What the upper mirror serves now: news only if it is newer than this mirror.
                mine = self.last_synced()
                changed = mine is None or (published is not None and published > mine)
                log.info("%s: listening for the upper mirror's announcements (it serves snapshot %s)",
                         self.shown, snapshot)
            first = False
            if snapshot is not None:
                self.heard = snapshot
            if changed:
                self.announcements += 1
                pause = self.rand() * self.cfg.upstream.announce_jitter
                log.info("the upper mirror published snapshot %s: syncing in %.1f s", snapshot, pause)
                if not await _sleep(stop, pause):
                    return
                self.wake.set()
            elif time.monotonic() - started < MIN_ROUND:
                await _sleep(stop, 5 * MIN_ROUND)


def _parse(body: bytes) -> tuple[str | None, float | None] | None:
    """(snapshot id, when published) of an announcement; None for anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "snapshot" not in data:
        return None
    snapshot, published = data.get("snapshot"), data.get("published")
    if snapshot is not None and not (isinstance(snapshot, str) and 0 < len(snapshot) <= 200):
        return None
    if not isinstance(published, (int, float)) or isinstance(published, bool):
        published = None
    return snapshot, published


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, or less if `stop` is set; False when it is."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    except asyncio.TimeoutError:
        return True
    return False
