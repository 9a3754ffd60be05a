"""A failing disk under the server (EIO injected into the server's own system
calls with strace): the download concerned fails, the server says so once,
and every other answer goes on."""

from __future__ import annotations

import sys
from pathlib import Path

from serverkit import EP11_INDEX, Client, ServerProcess, get, publish, write_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diskkit import inject  # noqa: E402

MODULE = "/m/em002_64_l0.nup"
MODULE_BYTES = bytes(range(256)) * 2048          # 512 KiB: sent from disk with sendfile


def test_a_read_error_while_sending_cuts_that_download_only_and_is_logged_once(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: b"[PERSEUS0]\r\n"})
    cfg = write_config(tmp_path, root, free_port)
    server = ServerProcess(cfg, free_port, wrap=inject("sendfile:error=EIO:when=1..3")).wait_ready(30)
    try:
        cut = 0
        for _ in range(3):
            with Client(free_port) as c:
                try:
                    r = c.request(MODULE)
                    cut += r.body != MODULE_BYTES
                except (ConnectionError, OSError):
                    cut += 1
        assert cut == 3
        assert get(free_port, MODULE).body == MODULE_BYTES
        assert get(free_port, "/" + EP11_INDEX).body == b"[PERSEUS0]\r\n"
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err[-2000:]
    told = [line for line in err.splitlines() if "Input/output error" in line]
    assert len(told) == 1 and MODULE in told[0] and "cut" in told[0], err[-2000:]


def test_an_unreadable_file_is_a_500_not_a_404_and_is_logged_once(tmp_path, free_port):
    root = tmp_path / "store"
    snap = publish(root, {MODULE: MODULE_BYTES, "/m/other.nup": MODULE_BYTES[::-1]},
                   {EP11_INDEX: b"[PERSEUS0]\r\n"})
    cfg = write_config(tmp_path, root, free_port)
    failing = str(snap.tree / MODULE.lstrip("/"))
    server = ServerProcess(cfg, free_port, wrap=inject("openat:error=EIO", path=failing)).wait_ready(30)
    try:
        assert [get(free_port, MODULE).status for _ in range(3)] == [500] * 3
        assert get(free_port, "/m/other.nup").body == MODULE_BYTES[::-1]
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err[-2000:]
    told = [line for line in err.splitlines() if "Input/output error" in line]
    assert len(told) == 1 and failing in told[0] and "500" in told[0], err[-2000:]
