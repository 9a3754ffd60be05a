"""A snapshot switch never breaks a download in progress nor mixes snapshots."""

import os
import socket

from serverkit import EP11_INDEX, Client, ServerProcess, get, publish, request_bytes, wait_until, write_config
from updmirror.store.snapshots import Store

BIG = "/endpointwindowslatest-rel-sta/mod_010_engine_1/em010_64_l0.nup"
ONLY_OLD = "/endpointwindowslatest-rel-sta/mod_011_old_1/em011_64_l0.nup"
ONLY_NEW = "/endpointwindowslatest-rel-sta/mod_011_old_2/em011_64_l0.nup"
OLD_BIG = os.urandom(1 << 16) * 512          # 32 MiB: far more than socket buffers hold


def _start_download(port: int) -> Client:
    c = Client(port, timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.send(request_bytes(BIG))
    while b"\r\n\r\n" not in c.buf:
        assert c._fill()
    return c


def _finish_download(c: Client) -> bytes:
    r = c.read_response()
    assert r.status == 200
    return r.body


def test_a_download_survives_a_switch_and_the_next_index_is_new(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {BIG: OLD_BIG, ONLY_OLD: b"old module"}, {EP11_INDEX: b"[OLD]\r\n"})
    cfg = write_config(tmp_path, root, free_port, mirror={"grace": "2h"}, workers=2)
    with ServerProcess(cfg, free_port) as server:
        download = _start_download(server.port)
        try:
            publish(root, {BIG: OLD_BIG, ONLY_NEW: b"new module"}, {EP11_INDEX: b"[NEW]\r\n"})
            Store(root).retire_and_clean(grace_seconds=7200)
            # Every worker moves to the new index within a second or two ...
            assert wait_until(lambda: all(get(server.port, "/update.ver").body == b"[NEW]\r\n"
                                          for _ in range(8)), 10)
            # ... while the download started before the switch ends with the old bytes.
            assert _finish_download(download) == OLD_BIG
        finally:
            download.close()
        assert get(server.port, ONLY_NEW).body == b"new module"
        # A client that read the old index still finds its files during the grace period.
        assert get(server.port, ONLY_OLD).body == b"old module"
        # But the old index itself is never served next to the new one.
        assert get(server.port, "/" + EP11_INDEX).body == b"[NEW]\r\n"


def test_a_download_survives_the_clean_up_of_its_snapshot(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {BIG: OLD_BIG, ONLY_OLD: b"old module"}, {EP11_INDEX: b"[OLD]\r\n"})
    cfg = write_config(tmp_path, root, free_port, mirror={"grace": "1s"})
    with ServerProcess(cfg, free_port) as server:
        download = _start_download(server.port)
        try:
            old = Store(root).current()
            publish(root, {ONLY_NEW: b"new module"}, {EP11_INDEX: b"[NEW]\r\n"})
            store = Store(root)
            store.retire_and_clean(grace_seconds=1)
            store.retire_and_clean(grace_seconds=1, now=old.created + 3600)
            assert not old.dir.exists()
            assert not store.pool_file(BIG).exists()   # no name left anywhere: only the open file
            assert _finish_download(download) == OLD_BIG
        finally:
            download.close()
        # Past its grace, the old snapshot's own files are gone.
        assert wait_until(lambda: get(server.port, ONLY_OLD).status == 404, 10)


def test_no_worker_answers_404_for_a_file_of_the_current_snapshot(tmp_path, free_port):
    """Invariant 1 across workers: each looks at `current` on its own clock, so
    right after a switch one worker serves the new index while another has not
    loaded the new snapshot yet; a client that read the new index must still
    get every file it lists, whichever worker its next connection reaches."""
    root = tmp_path / "store"
    publish(root, {"/m/r0.nup": b"release 0"}, {EP11_INDEX: b"[0]\r\n"})
    cfg = write_config(tmp_path, root, free_port, mirror={"grace": "2h"}, workers=4)
    misses, asked = [], 0
    with ServerProcess(cfg, free_port) as server:
        for release in range(1, 7):
            module = f"/m/r{release}.nup"
            publish(root, {module: f"release {release}".encode()}, {EP11_INDEX: f"[{release}]\r\n".encode()})
            index = f"[{release}]\r\n".encode()
            assert wait_until(lambda index=index: get(server.port, "/" + EP11_INDEX).body == index, 10, step=0), \
                f"no worker served release {release}"
            for _ in range(24):           # fresh connections, spread over the workers by the kernel
                asked += 1
                r = get(server.port, module)
                if r.status != 200:
                    misses.append((release, r.status))
    assert not misses, f"{len(misses)} of {asked} requests for a file of the current snapshot failed: {misses}"
