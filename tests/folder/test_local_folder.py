"""Publishing the store's current snapshot to a local shared folder."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirrorkit import assert_whole, listed_files, public_dir
from serverkit import SRC
from updmirror.errors import FolderError
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer
from updmirror.folder import publish
from updmirror.folder.record import RECORD_NAME
from updmirror.folder.targets import LocalFolder

HOUR = 3600.0


def indexes_in(share: Path) -> dict[str, bytes]:
    return {str(p.relative_to(share)): p.read_bytes() for p in sorted(share.rglob("update.ver"))}


def assert_complete(share: Path, index_rel: str, index: bytes | None = None) -> list[str]:
    """Every file the index lists is in the folder, whole; returns their folder paths."""
    index = (share / index_rel).read_bytes() if index is None else index
    found = []
    for path, size in listed_files(index, index_rel):
        f = share / path.lstrip("/")
        assert f.is_file(), f"{path}, listed by {index_rel}, is missing"
        assert_whole(f.read_bytes(), size, str(f))
        found.append(path.lstrip("/"))
    assert found
    return found


def by_section(index: bytes, index_rel: str) -> dict[str, str]:
    """Module section -> the path of its file, as a client resolves `file=`."""
    parsed = UpdateVer.parse(index)
    return {m.section: m.path.lstrip("/") for m in modules(parsed, "http://mirror/" + index_rel)}


@pytest.fixture
def share(synced) -> Path:
    return synced.root / "share"


def local(share: Path) -> LocalFolder:
    folder = LocalFolder(share)
    folder.open()
    return folder


def test_flat_with_one_tree_puts_the_index_where_its_clients_look_with_bare_names_beside_it(synced, share):
    synced.write_config(trees=("ep11",))
    synced.sync()
    old_umask = os.umask(0o077)   # modes must not depend on the mirror's umask
    try:
        report = publish(synced.store, local(share), "flat", HOUR)
    finally:
        os.umask(old_umask)
    assert sorted(indexes_in(share)) == ["dll/update.ver"]
    names = assert_complete(share, "dll/update.ver")
    assert all(posixpath.dirname(n) == "dll" for n in names)     # bare names, beside the index
    assert report.copied == len(names) and report.indexes_replaced == 1
    snap = synced.store.current()
    in_folder = by_section((share / "dll/update.ver").read_bytes(), "dll/update.ver")
    in_snapshot = by_section((snap.tree / "eset_upd/ep11/dll/update.ver").read_bytes(),
                             "eset_upd/ep11/dll/update.ver")
    assert in_folder.keys() == in_snapshot.keys()
    for section, path in in_folder.items():
        assert (share / path).read_bytes() == (snap.tree / in_snapshot[section]).read_bytes(), section
    for p in [share / "dll", *share.rglob("*")]:
        want = 0o755 if p.is_dir() else 0o644
        assert stat.S_IMODE(p.stat().st_mode) == want, p


@pytest.mark.parametrize("layout,expected", [
    ("flat", ["ep11/dll/update.ver", "v16/dll/update.ver", "v5/update.ver"]),
    ("vendor", ["eset_upd/ep11/dll/update.ver", "eset_upd/v16/dll/update.ver", "eset_upd/v5/update.ver"]),
])
def test_several_trees_get_a_folder_each_or_the_vendors_own_paths(synced, share, layout, expected):
    synced.sync()
    publish(synced.store, local(share), layout, HOUR)
    assert sorted(indexes_in(share)) == expected
    for rel in expected:
        names = assert_complete(share, rel)
        if layout == "vendor":
            assert all(n.endswith(".nup") and "/mod_" in n for n in names)
            assert (share / rel).read_bytes() == (synced.store.current().tree / rel).read_bytes()
        else:
            assert all(posixpath.dirname(n) == posixpath.dirname(rel) for n in names)


def test_other_channels_go_below_their_tree_in_the_flat_layout(synced, share):
    synced.write_config(trees=("ep11",), channels=("regular", "pre-release"))
    synced.sync()
    publish(synced.store, local(share), "flat", HOUR)
    assert sorted(indexes_in(share)) == ["dll/update.ver", "pre/dll/update.ver"]
    assert_complete(share, "pre/dll/update.ver")


def test_nothing_else_in_the_folder_is_touched(synced, share):
    synced.sync()
    share.mkdir()
    (share / "readme.txt").write_text("the admin's")
    (share / "ep11").mkdir()
    (share / "ep11" / "notes.txt").write_text("also the admin's")
    os.utime(share / "readme.txt", (1_000_000, 1_000_000))
    folder = local(share)
    publish(synced.store, folder, "flat", HOUR)
    synced.release()
    synced.sync()
    publish(synced.store, folder, "flat", HOUR)
    publish(synced.store, folder, "vendor", 0.0)      # a layout change, no grace: all old names go
    assert (share / "readme.txt").read_text() == "the admin's"
    assert (share / "readme.txt").stat().st_mtime == 1_000_000
    assert (share / "ep11" / "notes.txt").read_text() == "also the admin's"
    vendor = [rel for rel in indexes_in(share) if rel.startswith("eset_upd/")]
    ours = set(vendor) | {n for rel in vendor for n in assert_complete(share, rel)} | {RECORD_NAME}
    left = {str(p.relative_to(share)) for p in share.rglob("*") if p.is_file()}
    assert left == ours | {"readme.txt", "ep11/notes.txt"}
    assert not (share / "v16").exists()     # folders the flat layout made, emptied, are gone


def test_a_name_someone_else_uses_stops_the_publish_before_anything_changes(synced, share):
    synced.write_config(trees=("ep11",))
    synced.sync()
    (share / "dll").mkdir(parents=True)
    (share / "dll" / "update.ver").write_bytes(b"[OTHER MIRROR]\r\n")
    with pytest.raises(FolderError, match=r"dll/update.ver exists and was not written by the mirror"):
        publish(synced.store, local(share), "flat", HOUR)
    assert sorted(p.name for p in share.rglob("*")) == ["dll", "update.ver"]


def test_files_are_in_place_before_each_index_is_replaced(synced, share):
    """At the moment each index is renamed into place, every file it lists is
    already whole in the folder: checked on the disk, at that moment."""
    synced.sync()

    class Watched(LocalFolder):
        checked: list[str] = []

        def put_bytes(self, rel, data):
            if rel.endswith("update.ver"):
                assert_complete(self.root, rel, data)
                self.checked.append(rel)
            super().put_bytes(rel, data)

    folder = Watched(share)
    folder.open()
    publish(synced.store, folder, "flat", HOUR)
    synced.release()
    synced.sync()
    publish(synced.store, folder, "flat", HOUR)
    assert sorted(Watched.checked) == sorted(2 * ["ep11/dll/update.ver", "v16/dll/update.ver", "v5/update.ver"])


def test_a_publish_that_stops_midway_leaves_the_old_indexes_whole_and_the_next_one_finishes(synced, share):
    synced.sync()
    publish(synced.store, local(share), "flat", HOUR)
    before = indexes_in(share)
    synced.release()
    synced.sync()

    class Breaks(LocalFolder):
        left = 5

        def put_file(self, rel, source):
            if self.left == 0:
                raise FolderError(f"{rel}: disk full (simulated)")
            self.left -= 1
            super().put_file(rel, source)

    broken = Breaks(share)
    broken.open()
    with pytest.raises(FolderError, match="disk full"):
        publish(synced.store, broken, "flat", HOUR)
    assert indexes_in(share) == before
    for rel in before:
        assert_complete(share, rel)
    report = publish(synced.store, local(share), "flat", HOUR)
    assert report.copied > 0 and report.indexes_replaced == 3
    for rel, old in before.items():
        assert indexes_in(share)[rel] != old
        assert_complete(share, rel)
        assert_complete(share, rel, old)       # the old index's files are still there
    assert not list(share.rglob(".updmirror-*.part"))


def test_the_files_of_a_replaced_index_stay_for_the_grace_period_then_go(synced, share):
    synced.sync()
    folder = local(share)
    publish(synced.store, folder, "flat", HOUR)
    old = indexes_in(share)
    old_files = {n for rel, data in old.items() for n in assert_complete(share, rel, data)}
    synced.release()
    synced.sync()
    report = publish(synced.store, folder, "flat", HOUR)
    new = indexes_in(share)
    new_files = {n for rel in new for n in assert_complete(share, rel)}
    only_old = old_files - new_files
    assert only_old and report.kept == len(only_old)
    for rel, data in old.items():       # a client that read the old index can finish
        assert_complete(share, rel, data)
    # The vendor reuses bare names in each release's module folders: none changed meaning.
    renamed = {n for n in new_files - old_files if posixpath.basename(n) in
               {posixpath.basename(o) for o in old_files}}
    assert renamed, "expected the vendor's release to reuse a bare file name"
    later = publish(synced.store, folder, "flat", HOUR, clock=lambda: time.time() + 2 * HOUR)
    assert later.removed == len(only_old)
    assert not [n for n in only_old if (share / n).exists()]
    for rel in new:
        assert_complete(share, rel)


def test_folder_publish_command_and_the_sync_publish_the_configured_folder(mirror):
    share = mirror.root / "share"
    mirror.write_config(trees=("ep11",), extra={"folder": {"path": str(share)}})
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([sys.executable, "-m", "updmirror", "sync", "-c", str(mirror.config_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "shared folder" in done.stdout
    assert_complete(share, "dll/update.ver")
    done = subprocess.run([sys.executable, "-m", "updmirror", "folder", "publish", "-c",
                           str(mirror.config_path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "0 file(s) copied" in done.stdout


def test_an_unusable_folder_fails_the_command_with_one_clear_line(synced, tmp_path):
    synced.write_config(trees=("ep11",), extra={"folder": {"path": str(tmp_path / "no" / "such")}})
    synced.sync()
    done = subprocess.run([sys.executable, "-m", "updmirror", "folder", "publish", "-c",
                           str(synced.config_path)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"updmirror: error: {tmp_path / 'no' / 'such'}: its parent folder does not exist; create it, "
        "or set [folder] path to an existing folder"]


def test_a_folder_other_accounts_cannot_read_is_named_with_the_fix():
    from updmirror.folder.publish import warn_if_unreadable

    base = public_dir()
    try:
        share = base / "share"
        share.mkdir(mode=0o755)
        assert warn_if_unreadable(share) is None
        os.chmod(base, 0o700)
        assert warn_if_unreadable(share) == (f"{base} is mode 0700: an account other than its owner cannot "
                                             f"reach the shared folder; chmod o+x {base}")
        os.chmod(base, 0o755)
        os.chmod(share, 0o750)
        assert warn_if_unreadable(share).endswith(f"cannot read the shared folder; chmod o+rx {share}")
    finally:
        shutil.rmtree(base)


def test_the_daemon_publishes_the_folder_after_its_sync(mirror, free_port):
    share = mirror.root / "share"
    port = free_port
    config = mirror.write_config(trees=("ep11",), extra={"folder": {"path": str(share)},
                                                         "http": {"listen": [f"127.0.0.1:{port}"], "workers": 1}})
    daemon = subprocess.Popen([sys.executable, "-m", "updmirror", "run", "-c", str(config)],
                              env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        until = time.monotonic() + 120
        while not (share / "dll" / "update.ver").exists() and time.monotonic() < until:
            assert daemon.poll() is None, daemon.stderr.read()
            time.sleep(0.2)
        assert_complete(share, "dll/update.ver")
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "shared folder" in err and "holds snapshot" in err

