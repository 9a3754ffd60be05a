"""The shared counters, and when `run` syncs."""

import asyncio
import os

import pytest
from helpers import EP11_INDEX, Client, InProcessServer, get, publish, wait_until, write_config

from updmirror.errors import UpstreamError
from updmirror.serve.counters import Counters, estimate_distinct
from updmirror.serve.schedule import first_delay, next_delay, sync_forever


def test_counters_of_all_workers_add_up_across_processes():
    counters = Counters(2)
    pid = os.fork()
    if pid == 0:
        slot = counters.slot(1)
        slot.requests_total, slot.bytes_sent = 5, 500
        slot.responses[4] = 2
        slot.saw_client("10.0.0.9")
        slot.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    slot = counters.slot(0)
    slot.requests_total, slot.connections_open = 3, 1
    slot.responses[2] = 3
    slot.saw_client("10.0.0.1")
    slot.saw_client("10.0.0.9")
    slot.flush()
    snap = counters.snapshot()
    assert snap["requests_total"] == 8 and snap["bytes_sent"] == 500 and snap["connections_open"] == 1
    assert snap["responses"] == {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 2, "5xx": 0}
    assert snap["clients"] == 2
    assert snap["workers"] == 2 and snap["uptime"] >= 0


def test_distinct_clients_are_estimated_closely():
    counters = Counters(1)
    slot = counters.slot(0)
    for i in range(5000):
        slot.saw_client(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}")
    slot.flush()
    assert abs(counters.snapshot()["clients"] - 5000) < 250
    assert estimate_distinct(0, 1024) == 0


def test_the_server_counts_what_it_does(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {}, {EP11_INDEX: b"[A]\r\n"})
    with InProcessServer(write_config(tmp_path, root, free_port)) as server:
        with Client(free_port) as c:
            for _ in range(3):
                c.request("/" + EP11_INDEX)
            c.request("/missing")
        snap = wait_until(lambda: (s := server.counters.snapshot())["requests_total"] >= 4 and s)
        assert snap["responses"]["2xx"] >= 3 and snap["responses"]["4xx"] >= 1
        assert snap["connections_total"] >= 1 and snap["bytes_sent"] > 0 and snap["clients"] == 1
        assert get(free_port, "/" + EP11_INDEX).status == 200


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
