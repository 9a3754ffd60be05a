"""What a hostile LAN client or a tampered store tries, over real sockets:
swapped files, malformed heads. (Path spellings are in test_serving.py,
timeouts and caps in test_limits.py, guessing in test_basic.py.)"""

import os
import shutil
import socket

import pytest

from serverkit import (
    EP11_INDEX,
    Client,
    InProcessServer,
    ServerProcess,
    get,
    publish,
    wait_until,
    write_config,
)

MODULE = "/m/em002_64_l0.nup"
#: Larger than tables.SMALL_FILE, so it is opened per request, not kept in memory.
MODULE_BYTES = b"\x5a" * (256 * 1024)
SECRET = b"secret outside the store " * 20000


@pytest.fixture
def served(tmp_path, free_port):
    root = tmp_path / "store"
    snap = publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: b"[PERSEUS0]\r\n"})
    cfg = write_config(tmp_path, root, free_port)
    with InProcessServer(cfg):
        assert get(free_port, MODULE).body == MODULE_BYTES
        yield snap, free_port


def test_a_file_swapped_for_a_symlink_after_the_tables_were_built_is_not_followed(served, tmp_path, caplog):
    snap, port = served
    (tmp_path / "secret").write_bytes(SECRET)
    target = snap.tree / MODULE.lstrip("/")
    target.unlink()
    os.symlink(tmp_path / "secret", target)
    for _ in range(3):
        r = get(port, MODULE)
        assert r.status == 404 and b"secret" not in r.body
    # Said, and said once: not a line per request.
    assert [r.getMessage() for r in caplog.records].count(
        f"worker 0: {target} was replaced (by a symlink or another file) after it was published; "
        "refusing to serve it. Only 'updmirror sync' writes the store: find out what changed it") == 1


def test_a_folder_swapped_for_a_symlink_after_the_tables_were_built_is_not_followed(served, tmp_path):
    snap, port = served
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / os.path.basename(MODULE)).write_bytes(SECRET)
    folder = snap.tree / "m"
    shutil.rmtree(folder)
    os.symlink(elsewhere, folder)
    r = get(port, MODULE)
    assert r.status == 404 and b"secret" not in r.body


def test_a_file_replaced_by_another_after_the_tables_were_built_is_not_served(served):
    snap, port = served
    target = snap.tree / MODULE.lstrip("/")
    target.unlink()
    target.write_bytes(SECRET)
    r = get(port, MODULE)
    assert r.status == 404 and b"secret" not in r.body


def raw(port: int, head: bytes) -> tuple[int, bool]:
    """The status of the answer to `head`, and whether the server closed after it."""
    with Client(port) as c:
        c.send(head)
        r = c.read_response()
        return r.status, c.closed_by_server(timeout=2)


@pytest.mark.parametrize("head", [
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\n\r\n",                          # no Host
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",     # two
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: a b\r\n\r\n",               # not a host
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\r\nUser-Agent: a\x00b\r\n\r\n",
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\r\nUser-Agent: a\rb\r\n\r\n",
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\r\nX-A: a\nX-B: b\r\n\r\n",  # bare LF
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\x00\r\n\r\n",
    b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\r\nX-A: \x01\r\n\r\n",
], ids=["no-host", "two-hosts", "two-hosts-http10", "bad-host", "nul", "bare-cr", "bare-lf",
        "nul-in-host", "control"])
def test_heads_rfc9112_calls_invalid_get_400_and_a_close(served, head):
    _snap, port = served
    assert raw(port, head) == (400, True)


def test_http10_without_host_is_still_served(served):
    _snap, port = served
    status, _ = raw(port, b"GET /" + EP11_INDEX.encode() + b" HTTP/1.0\r\n\r\n")
    assert status == 200


def connect_many(port: int, count: int, addresses: int) -> list[socket.socket]:
    """`count` idle connections from 127.0.0.2 .. 127.0.0.(addresses+1), round robin."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.settimeout(10)
        s.bind((f"127.0.0.{2 + i % addresses}", 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def _status_of_a_new_client(port: int) -> int:
    with Client(port, timeout=10) as probe:
        return probe.request(MODULE).status


def test_out_of_descriptors_a_file_that_exists_is_not_404_and_new_clients_get_503(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: b"[PERSEUS0]\r\n"})
    # The probe's case: `ulimit -n 1100`, one worker, the default max_connections.
    cfg = write_config(tmp_path, root, free_port, max_connections_per_address=20000)
    server = ServerProcess(cfg, free_port, open_files=1100).wait_ready()
    held = []
    try:
        with Client(free_port) as first:
            held = connect_many(free_port, 1200, addresses=60)
            # Only once the server has met its limit does the rest test anything.
            assert wait_until(lambda: _status_of_a_new_client(free_port) == 503, 20)
            r = first.request(MODULE)
            assert r.status == 200 and r.body == MODULE_BYTES
            with Client(free_port, timeout=10) as late:
                r = late.read_response()        # answered at once, not left waiting
                assert r.status == 503 and "retry-after" in r.headers
            assert first.request(MODULE).body == MODULE_BYTES
    finally:
        for s in held:
            s.close()
        code, err = server.stop()
    assert code == 0, err[-2000:]
    assert "Traceback" not in err and len(err) < 20_000, err[-2000:]
    # Said at start-up: the cap was lowered to what the descriptors hold.
    assert "open files limit" in err and "1100" in err, err[-2000:]
