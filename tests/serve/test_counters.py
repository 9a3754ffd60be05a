"""The counters shared by the server's workers."""

import os

from serverkit import EP11_INDEX, Client, InProcessServer, get, publish, wait_until, write_config
from updmirror.serve.counters import Counters, estimate_distinct


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
