"""Sync against the simulated vendor over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synckit import PASSWORD, assert_snapshot_complete

from serverkit import SRC
from updmirror.errors import LockedError
from updmirror.eset.trees import TREES
from updmirror.store import StoreLock
from updmirror.sync.engine import run_sync
from updmirror.vendor.faults import Fault
from updmirror.vendor.generate import VendorState
from updmirror.vendor.publish import publish


def sync(setup, **kw):
    return asyncio.run(run_sync(setup.cfg(), **kw))


def store_listing(root: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of everything clients or the pool could see."""
    out = {}
    for sub in ("pool", "snapshots"):
        for dirpath, _dirs, files in os.walk(root / sub):
            for name in files:
                p = Path(dirpath) / name
                st = p.stat()
                out[str(p.relative_to(root))] = (st.st_ino, st.st_mtime_ns)
    out["current"] = (0, hash(os.readlink(root / "current")))
    return out


def test_first_sync_mirrors_two_trees_completely_and_byte_for_byte(setup):
    report = sync(setup)
    assert report.ok, report.message
    snap = setup.store.current()
    www = setup.vendor_root / "www"
    state = VendorState.load(setup.vendor_root)
    for tree in ("ep11", "v16"):
        (index_path,) = TREES[tree].index_paths("regular")
        served = (snap.tree / index_path).read_bytes()
        assert b"[HOSTS]" not in served and b"\r\n" in served and b"\n" not in served.replace(b"\r\n", b"")
        for path in state.indexes[index_path]:
            assert (snap.tree / path.lstrip("/")).read_bytes() == (www / path.lstrip("/")).read_bytes()
    assert report.files_fetched == len({p for t in ("ep11", "v16")
                                        for p in state.indexes[TREES[t].index_paths()[0]]})
    assert_snapshot_complete(setup.store)


def test_second_sync_without_change_makes_one_request_per_index_and_writes_nothing(setup):
    assert sync(setup).ok
    before = store_listing(setup.store_root)
    setup.server.reset_requests()
    report = sync(setup)
    assert report.ok and report.published is None
    assert len(setup.server.requests) == 2                # ep11 and v16, one index each
    assert all(r.path.endswith("update.ver") and r.status == 304 for r in setup.server.requests)
    assert store_listing(setup.store_root) == before


def test_after_a_vendor_release_only_the_new_files_are_fetched(setup):
    assert sync(setup).ok
    old = VendorState.load(setup.vendor_root)
    publish(setup.vendor_root)
    new = VendorState.load(setup.vendor_root)
    setup.server.reset_requests()
    report = sync(setup)
    assert report.ok, report.message
    wanted = set()
    for tree in ("ep11", "v16"):
        p = TREES[tree].index_paths()[0]
        wanted |= set(new.indexes[p]) - {f for t in ("ep11", "v16") for f in old.indexes[TREES[t].index_paths()[0]]}
    fetched = {r.path for r in setup.server.requests if r.path.endswith(".nup")}
    assert fetched == {p if p.startswith("/") else "/" + p for p in wanted}
    assert report.files_fetched == len(wanted)
    assert_snapshot_complete(setup.store)


def run_cli(setup, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "updmirror", "sync", "-c", str(setup.config_path), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_exits_non_zero_with_a_message_naming_url_and_cause_and_no_password(setup):
    setup.server.faults.set([Fault("status", "eset_upd/*", arg=401)])
    proc = run_cli(setup)
    assert proc.returncode == 1
    assert "401" in proc.stderr and "eset_upd/ep11/dll/update.ver" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
    setup.server.faults.set([])
    proc = run_cli(setup, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] and summary["files_fetched"] > 0 and summary["published"]
    assert PASSWORD not in proc.stdout + proc.stderr


def test_a_config_error_names_the_key_and_exits_2(setup):
    setup.config_path.write_text(setup.config_path.read_text().replace("channels", "chanels"))
    proc = run_cli(setup)
    assert proc.returncode == 2
    assert "chanels" in proc.stderr and str(setup.config_path) in proc.stderr


def test_an_index_dropping_too_many_files_is_refused_unless_forced(setup):
    setup.write_config(extra_mirror="max_drop = 0.1\nplatforms = []")
    assert sync(setup).ok
    current = setup.store.current().id
    setup.write_config(extra_mirror='max_drop = 0.1\nplatforms = ["arm64"]')
    report = sync(setup)
    assert not report.ok and "max_drop" in report.message and "--force" in report.message
    assert setup.store.current().id == current
    report = sync(setup, force=True)
    assert report.ok and setup.store.current().id != current


def test_only_one_sync_runs_at_a_time(setup):
    setup.store.ensure()
    with StoreLock(setup.store_root):
        with pytest.raises(LockedError, match="another sync"):
            sync(setup)


def test_a_mirror_can_sync_from_a_folder(setup, tmp_path):
    text = setup.config_path.read_text()
    text = text.replace(f'url = "{setup.server.url}"', f'url = "{setup.vendor_root / "www"}"')
    setup.config_path.write_text(text.replace('username = "EAV-0123456789"\n', "")
                                 .replace(f'password = "{PASSWORD}"\n', ""))
    report = sync(setup)
    assert report.ok, report.message
    assert_snapshot_complete(setup.store)
    assert setup.server.requests == []
