import os

import pytest

from updmirror.errors import LockedError, UnsafePathError
from updmirror.store import Store, StoreLock


def put_pool(store: Store, path: str, data: bytes):
    target = store.pool_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def publish(store: Store, files: dict[str, bytes], index: bytes):
    b = store.new_snapshot()
    for path, data in files.items():
        b.link(path, put_pool(store, path, data) if not store.pool_file(path).exists()
               else store.pool_file(path))
    b.write("eset_upd/ep11/dll/update.ver", index)
    return b.publish({"indexes": [{"path": "eset_upd/ep11/dll/update.ver"}]})


def test_publish_makes_the_snapshot_current_and_shares_unchanged_files(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    s1 = publish(store, {"/a/1.nup": b"one", "/a/2.nup": b"two"}, b"[A]\r\n")
    assert store.current().id == s1.id
    s2 = publish(store, {"/a/1.nup": b"one", "/a/3.nup": b"three"}, b"[B]\r\n")
    assert store.current().id == s2.id
    # Same inode: an unchanged file is linked, not copied.
    assert (s1.tree / "a/1.nup").stat().st_ino == (s2.tree / "a/1.nup").stat().st_ino
    assert (s2.tree / "eset_upd/ep11/dll/update.ver").read_bytes() == b"[B]\r\n"
    assert os.readlink(store.current_link) == f"snapshots/{s2.id}"


def test_previous_snapshot_stays_served_for_the_grace_then_goes(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    s1 = publish(store, {"/a/1.nup": b"one", "/a/2.nup": b"two"}, b"[A]\r\n")
    s2 = publish(store, {"/a/1.nup": b"one"}, b"[B]\r\n")
    # Replaced but not yet marked retired: still served.
    assert [s.id for s in store.in_grace(100, now=1050.0)] == [s1.id]
    store.retire_and_clean(grace_seconds=100, now=1000.0)
    assert store.current().id == s2.id
    assert [s.id for s in store.in_grace(100, now=1050.0)] == [s1.id]
    assert (store.in_grace(100, now=1050.0)[0].tree / "a/2.nup").is_file()
    assert store.in_grace(100, now=1101.0) == []
    store.retire_and_clean(grace_seconds=100, now=1101.0)
    assert [s.id for s in store.snapshots()] == [s2.id]
    # The pool keeps what the current snapshot links, drops what nothing links.
    assert store.pool_file("/a/1.nup").exists()
    assert not store.pool_file("/a/2.nup").exists()


def test_store_paths_refuse_to_leave_the_store(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    publish(store, {"/a/1.nup": b"one"}, b"[A]\r\n")
    (tmp_path / "secret").write_text("x")
    for evil in ("/../../secret", "/a/%2e%2e/%2e%2e/secret", "/a/..%2f..%2fsecret", "/a/1.nup\x00"):
        with pytest.raises(UnsafePathError):
            store.pool_file(evil)
        with pytest.raises(UnsafePathError):
            store.new_snapshot().write(evil, b"x")
    assert store.pool_file("/a/1.nup").read_bytes() == b"one"


def test_an_abandoned_build_is_invisible_and_cleaned(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    b = store.new_snapshot()
    b.write("eset_upd/x/update.ver", b"[A]\r\n")
    assert store.current() is None and store.snapshots() == []
    store.retire_and_clean(0)
    assert not any(store.snapshots_dir.iterdir())


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    with StoreLock(tmp_path):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            StoreLock(tmp_path).acquire()
    with StoreLock(tmp_path):
        pass


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    import subprocess
    import sys
    import time
    code = ("import sys,time; sys.path.insert(0, 'src'); from updmirror.store import StoreLock; "
            f"StoreLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError):
            StoreLock(tmp_path).acquire()
        proc.kill()
        proc.wait(10)
        deadline = time.time() + 5
        lock = StoreLock(tmp_path)
        lock.acquire()   # the kernel released the dead holder's lock
        lock.release()
        assert time.time() < deadline
    finally:
        proc.kill()


def test_served_folders_follow_each_switch_and_keep_graced_files_at_their_paths(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    tree, pool = store.served_folders()
    publish(store, {"/a/1.nup": b"one", "/a/2.nup": b"two"}, b"[A]\r\n")
    assert (tree / "eset_upd/ep11/dll/update.ver").read_bytes() == b"[A]\r\n"
    publish(store, {"/a/1.nup": b"one"}, b"[B]\r\n")
    store.retire_and_clean(grace_seconds=100, now=1000.0)
    # The same path now names the new snapshot: a web server resolves it per request.
    assert (tree / "eset_upd/ep11/dll/update.ver").read_bytes() == b"[B]\r\n"
    assert not (tree / "a/2.nup").exists() and (pool / "a/2.nup").read_bytes() == b"two"
    assert not list(pool.rglob("update.ver"))          # indexes only ever from the current snapshot
    store.retire_and_clean(grace_seconds=100, now=1101.0)
    assert not (pool / "a/2.nup").exists() and (pool / "a/1.nup").exists()
