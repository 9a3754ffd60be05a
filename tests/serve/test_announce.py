"""GET /updmirror/announce: lower mirrors wait on a real server for its next snapshot."""

import json
import threading
import time

from serverkit import (
    EP11_INDEX,
    Client,
    InProcessServer,
    ServerProcess,
    get,
    publish,
    request_bytes,
    wait_until,
    write_config,
)
from updmirror.store.snapshots import Store

MODULE = "/endpointwindowslatest-rel-sta/mod_010_engine_1/em010_64_l0.nup"


def _store(tmp_path, index: bytes = b"[ONE]\r\n"):
    root = tmp_path / "store"
    publish(root, {MODULE: b"module"}, {EP11_INDEX: index})
    return root


def _announce(port: int, query: str = "", timeout: float = 30, **kw):
    with Client(port, timeout=timeout) as c:
        r = c.request("/updmirror/announce" + query, **kw)
    return r, (json.loads(r.body) if r.status == 200 else None)


def _in_background(func):
    """func() in a thread; the returned box holds its result (or error) and when it came."""
    box: dict = {}

    def main():
        try:
            box["result"] = func()
        except BaseException as exc:    # reported by the test's assertions
            box["error"] = exc
        box["at"] = time.monotonic()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    box["thread"] = thread
    return box


def test_without_after_the_answer_names_the_snapshot_served_at_once(tmp_path, free_port):
    root = _store(tmp_path)
    cfg = write_config(tmp_path, root, free_port, mirror={"name": "upper-a"})
    with ServerProcess(cfg, free_port) as server:
        started = time.monotonic()
        r, news = _announce(server.port)
        assert time.monotonic() - started < 2
        assert r.status == 200 and r.headers["cache-control"] == "no-store"
        current = Store(root).current()
        assert news == {"snapshot": current.id, "published": current.created, "mirror": "upper-a"}
        # An id it does not serve (an older one): news at once, too.
        r, news = _announce(server.port, "?after=20200101T000000Z-old&wait=20")
        assert news["snapshot"] == current.id


def test_a_waiting_request_is_answered_when_a_snapshot_is_published(tmp_path, free_port):
    root = _store(tmp_path)
    cfg = write_config(tmp_path, root, free_port, workers=2)
    with ServerProcess(cfg, free_port) as server:
        before = Store(root).current().id
        box = _in_background(lambda: _announce(server.port, f"?after={before}&wait=40", timeout=60))
        time.sleep(1.5)
        assert "at" not in box, "answered although nothing was published"
        new = publish(root, {MODULE: b"module"}, {EP11_INDEX: b"[TWO]\r\n"})
        published = time.monotonic()
        box["thread"].join(20)
        r, news = box["result"]
        assert news["snapshot"] == new.id != before
        assert box["at"] - published < 5
        # Settled before it was announced: every worker serves the new index
        # (each new connection may land on either worker).
        assert all(get(server.port, "/" + EP11_INDEX).body == b"[TWO]\r\n" for _ in range(12))


def test_a_wait_that_runs_out_is_answered_with_the_same_snapshot(tmp_path, free_port):
    root = _store(tmp_path)
    cfg = write_config(tmp_path, root, free_port)
    with ServerProcess(cfg, free_port) as server:
        current = Store(root).current().id
        started = time.monotonic()
        r, news = _announce(server.port, f"?after={current}&wait=1")
        took = time.monotonic() - started
        assert news["snapshot"] == current
        assert 0.9 <= took < 4
        # The connection goes on: the next request on it is answered.
        c = Client(server.port)
        try:
            c.send(request_bytes(f"/updmirror/announce?after={current}&wait=0.5"))
            assert json.loads(c.read_response().body)["snapshot"] == current
            c.send(request_bytes("/" + EP11_INDEX))
            assert c.read_response().body == b"[ONE]\r\n"
        finally:
            c.close()


def test_a_mirror_without_a_snapshot_holds_the_request_until_its_first(tmp_path, free_port):
    root = tmp_path / "store"
    Store(root).ensure()
    cfg = write_config(tmp_path, root, free_port)
    with ServerProcess(cfg, free_port) as server:
        box = _in_background(lambda: _announce(server.port, "?wait=30", timeout=60))
        time.sleep(1)
        assert "at" not in box
        first = publish(root, {MODULE: b"module"}, {EP11_INDEX: b"[ONE]\r\n"})
        box["thread"].join(20)
        assert box["result"][1]["snapshot"] == first.id


def test_waiters_are_bounded_and_forgotten_when_they_hang_up(tmp_path, free_port):
    root = _store(tmp_path)
    cfg = write_config(tmp_path, root, free_port, announce_waiters=3)
    with InProcessServer(cfg) as server:
        current = Store(root).current().id
        waiting = [Client(server.port) for _ in range(3)]
        extra = Client(server.port)
        try:
            for c in waiting:
                c.send(request_bytes(f"/updmirror/announce?after={current}&wait=30"))
            assert wait_until(lambda: len(server.worker.announce.waiting) == 3, 5)
            extra.send(request_bytes(f"/updmirror/announce?after={current}&wait=30"))
            r = extra.read_response()
            assert r.status == 503 and r.headers["retry-after"] == "30"
            assert b"announce_waiters" in r.body
            # An upper mirror's administrator sees them waiting.
            assert wait_until(lambda: json.loads(get(server.port, "/status.json").body)["server"]
                              ["announce_waiting"] == 3, 5)
            assert "updmirror_announce_waiting 3.0" in get(server.port, "/metrics").body.decode()
            # Files are still served while the waiters wait.
            assert get(server.port, MODULE).body == b"module"
            waiting[0].close()
            assert wait_until(lambda: len(server.worker.announce.waiting) == 2, 5)
        finally:
            for c in [*waiting, extra]:
                c.close()


def test_announcements_need_the_same_credentials_as_files(tmp_path, free_port):
    import bcrypt

    root = _store(tmp_path)
    hashed = bcrypt.hashpw(b"lower-pw", bcrypt.gensalt(4)).decode()
    (tmp_path / "htpasswd").write_text(f"lower:{hashed}\n")
    cfg = write_config(tmp_path, root, free_port, auth="basic", htpasswd=tmp_path / "htpasswd")
    with ServerProcess(cfg, free_port) as server:
        r, _ = _announce(server.port)
        assert r.status == 401
        r, _ = _announce(server.port, headers={"Authorization": "Basic bG93ZXI6d3Jvbmc="})  # lower:wrong
        assert r.status == 401
        r, news = _announce(server.port, headers={"Authorization": "Basic bG93ZXI6bG93ZXItcHc="})
        assert r.status == 200 and news["snapshot"] == Store(root).current().id


def test_stopping_the_server_answers_the_waiters_at_once(tmp_path, free_port):
    root = _store(tmp_path)
    cfg = write_config(tmp_path, root, free_port)
    server = ServerProcess(cfg, free_port).wait_ready(20)
    try:
        current = Store(root).current().id
        box = _in_background(lambda: _announce(server.port, f"?after={current}&wait=50", timeout=60))
        time.sleep(1)
        stopping = time.monotonic()
        server.stop(20)
        box["thread"].join(20)
        assert box["result"][1]["snapshot"] == current
        assert box["at"] - stopping < 5, "the waiter held the shutdown"
    finally:
        server.stop(20)
