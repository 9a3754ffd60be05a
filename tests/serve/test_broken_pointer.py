"""A damaged `current` pointer: the server keeps serving the last good
snapshot and says, once a minute, what is wrong; status says so too."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from serverkit import EP11_INDEX, INDEX_BYTES, ServerProcess, get, publish, wait_until, write_config
from updmirror import config
from updmirror.status import collect_status
from updmirror.store.snapshots import Store

MODULE = "/m/em001_64_l0.nup"
MODULE_BYTES = b"\x11" * (200 * 1024)     # read from disk per request, not from memory


def damage(root, how: str) -> None:
    link = root / "current"
    if how == "deleted":
        link.unlink()
    elif how == "missing-folder":
        link.unlink()
        os.symlink("snapshots/20990101T000000Z-000", link)
    elif how == "foreign-folder":
        # A folder that looks like a snapshot, outside the store.
        foreign = root.parent / "foreign"
        shutil.copytree(root / os.readlink(link), foreign)
        (foreign / "tree" / EP11_INDEX).write_bytes(b"[FOREIGN]\r\n")
        link.unlink()
        os.symlink(str(foreign), link)
    elif how == "regular-file":
        link.unlink()
        link.write_text("snapshots/whatever\n")


def served_well(port: int) -> bool:
    return all(get(port, "/" + EP11_INDEX).body == INDEX_BYTES and get(port, MODULE).body == MODULE_BYTES
               for _ in range(6))      # fresh connections: every worker is asked


HOWS = ["deleted", "missing-folder", "foreign-folder", "regular-file"]


@pytest.mark.parametrize("how", HOWS)
def test_a_damaged_pointer_keeps_the_last_good_snapshot_served_and_is_logged_once(tmp_path, free_port, how):
    root = tmp_path / "store"
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: INDEX_BYTES})
    cfg = write_config(tmp_path, root, free_port, workers=2)
    server = ServerProcess(cfg, free_port).wait_ready()
    try:
        assert served_well(free_port)
        damage(root, how)
        # Until every worker has said so, a good answer could come from one that has not looked yet.
        server.wait_for_log(lambda lines: len({m.group(1) for line in lines if (m := re.search(
            r"worker (\d+): the store's current pointer is broken", line))}) == 2, 10)
        for _ in range(5):
            assert served_well(free_port)
        # A new snapshot repairs it.
        publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: b"[NEW]\r\n"})
        assert wait_until(lambda: all(get(free_port, "/" + EP11_INDEX).body == b"[NEW]\r\n"
                                      for _ in range(6)), 10)
    finally:
        _, err = server.stop()
    broken = [line for line in err.splitlines() if "pointer" in line and "broken" in line]
    assert 1 <= len(broken) <= 2, err         # once per worker, not once per request or second
    assert "still serving snapshot" in broken[0] and "updmirror sync" in broken[0]


def test_a_server_started_with_a_damaged_pointer_serves_the_newest_snapshot(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {"/m/older.nup": b"old"}, {EP11_INDEX: b"[OLD]\r\n"})
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: INDEX_BYTES})
    damage(root, "regular-file")
    cfg = write_config(tmp_path, root, free_port)
    with ServerProcess(cfg, free_port) as server:
        assert served_well(server.port)


@pytest.mark.parametrize("how", HOWS)
def test_status_names_a_damaged_pointer_and_the_fix(tmp_path, free_port, how):
    root = tmp_path / "store"
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: INDEX_BYTES})
    path = write_config(tmp_path, root, free_port)
    damage(root, how)
    facts = collect_status(Store(root), config.load(path), {})
    assert facts["state"] != "fresh"
    assert any("current" in p and "broken" in p and "updmirror sync" in p for p in facts["problems"]), facts
    assert not any("no snapshot is published" in p for p in facts["problems"])
    assert facts["snapshot"] is not None          # the snapshot the server falls back to


def test_the_status_page_and_command_survive_current_as_a_regular_file(tmp_path, free_port):
    import subprocess
    import sys

    from serverkit import SRC

    root = tmp_path / "store"
    publish(root, {MODULE: MODULE_BYTES}, {EP11_INDEX: INDEX_BYTES})
    path = write_config(tmp_path, root, free_port)
    damage(root, "regular-file")
    with ServerProcess(path, free_port) as server:
        r = get(server.port, "/status.json")
        assert r.status == 200 and b"broken" in r.body
    done = subprocess.run([sys.executable, "-m", "updmirror", "status", "-c", str(path)], capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, PYTHONPATH=SRC))
    assert done.returncode == 1
    assert "broken" in done.stdout and "updmirror sync" in done.stdout, done.stdout + done.stderr
    assert "cannot read the store" not in done.stdout + done.stderr
