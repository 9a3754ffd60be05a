"""When `updmirror run` syncs: the jitter, the retry after a failure, the
first sync after a start, and waking the schedule early."""

import asyncio

import pytest

from updmirror.daemon import first_delay, next_delay, sync_forever
from updmirror.errors import UpstreamError


def test_the_next_sync_moves_by_the_jitter_and_a_failure_is_retried_sooner():
    assert next_delay(True, 3600, 0.0) == pytest.approx(3240)
    assert next_delay(True, 3600, 0.999999) == pytest.approx(3960, abs=0.01)
    assert next_delay(False, 3600, 0.5) == 600
    assert next_delay(False, 120, 0.5) == 60          # never sooner than a minute
    assert next_delay(False, 30, 0.5) == 30           # nor later than the interval


def test_the_first_sync_waits_for_a_fresh_mirror_only():
    assert first_delay(None, 3600, now=1000) == 0
    assert first_delay(0, 3600, now=10_000) == 0
    assert first_delay(9_000, 3600, now=10_000) == 2600


def test_sync_forever_keeps_going_through_failures_and_stops_when_told():
    calls = []

    class Report:
        def __init__(self, ok):
            self.ok, self.message = ok, "fake"

    async def fake_sync():
        calls.append(len(calls))
        if len(calls) == 1:
            raise UpstreamError("upstream down")
        if len(calls) == 2:
            raise RuntimeError("a bug")
        return Report(ok=len(calls) != 3)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(sync_forever(fake_sync, 0.05, stop, min_retry=0.01, rand=lambda: 0.5))
        for _ in range(200):
            if len(calls) >= 5:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert len(calls) >= 5


def test_a_wake_syncs_at_once_and_the_timer_stays_the_fallback():
    calls = []

    async def main():
        wake, stop = asyncio.Event(), asyncio.Event()

        async def fake_sync():
            calls.append(len(calls))
            if len(calls) == 1:
                wake.set()       # announced while this sync runs: one more sync right after it
            await asyncio.sleep(0.02)

        task = asyncio.create_task(sync_forever(fake_sync, 3600, stop, delay=3600, wake=wake))
        await asyncio.sleep(0.1)
        assert calls == []                       # an hour to go, and nobody woke it
        wake.set()
        wake.set()                               # twice before it runs: one sync
        for _ in range(200):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)                 # room for a wrong third sync
        assert calls == [0, 1] and not wake.is_set()
        stop.set()
        await asyncio.wait_for(task, 2)          # stops while waiting for the timer

    asyncio.run(main())


def test_without_a_wake_the_timer_alone_decides():
    calls = []

    async def fake_sync():
        calls.append(len(calls))

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(sync_forever(fake_sync, 0.1, stop, delay=0.0, rand=lambda: 0.5))
        await asyncio.sleep(0.35)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert 3 <= len(calls) <= 5          # at 0, 0.1, 0.2, 0.3 s
