"""Sync against the simulated vendor over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synckit import PASSWORD, assert_snapshot_complete

from updmirror.errors import LockedError
from updmirror.eset.trees import TREES
from updmirror.store import StoreLock
from updmirror.sync.engine import run_sync
from updmirror.vendor.faults import Fault
from updmirror.vendor.generate import VendorState
from updmirror.vendor.publish import publish

SRC = str(Path(__file__).resolve().parents[2] / "src")


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


FAULTS = [
    pytest.param(Fault("status", "eset_upd/*", arg=401), "401", id="401"),
    pytest.param(Fault("status", "eset_upd/*", arg=403), "403", id="403"),
    pytest.param(Fault("status", "eset_upd/*", arg=404), "404", id="404-index"),
    pytest.param(Fault("status", "*.nup", times=1, arg=404), "404", id="404-file"),
    pytest.param(Fault("status", "*.nup", arg="429,1"), "429", id="429"),
    pytest.param(Fault("status", "*.nup", arg=500), "500", id="500"),
    pytest.param(Fault("stall", "*.nup", arg=5), "stall|no data|bytes/s", id="stall"),
    pytest.param(Fault("slow", "*.nup", arg=200), "slow|speed|bytes/s", id="slow-drip"),
    pytest.param(Fault("truncate", "*.nup"), "truncat|ended|short|incomplete|fewer", id="truncated"),
    pytest.param(Fault("wrong_size", arg=2), "size|index says", id="wrong-size"),
    pytest.param(Fault("bad_crc", "*.nup", times=1), "CRC", id="bad-crc"),
    pytest.param(Fault("bad_signature", "*.nup", times=1), "signature", id="bad-signature"),
    pytest.param(Fault("captive_portal", "eset_upd/*"), "HTML", id="captive-portal"),
    pytest.param(Fault("escape"), "leave the repository|another host|'\\.\\.'", id="escape"),
    pytest.param(Fault("endless", "*.nup", arg=64), "large|more than|exceed|limit", id="endless"),
]


@pytest.mark.parametrize("fault,cause", FAULTS)
def test_every_fault_leaves_the_current_snapshot_untouched(setup, fault, cause):
    assert sync(setup).ok
    before = store_listing(setup.store_root)
    current = setup.store.current().id
    publish(setup.vendor_root)
    setup.server.faults.set([fault])
    started = time.monotonic()
    report = sync(setup)
    assert not report.ok
    assert __import__("re").search(cause, report.message, __import__("re").I), report.message
    assert "http://127.0.0.1:" in report.message           # names the URL
    assert PASSWORD not in json.dumps(report.to_dict())
    assert setup.store.current().id == current
    assert {k: v for k, v in store_listing(setup.store_root).items() if k.startswith(("snapshots", "current"))} \
        == {k: v for k, v in before.items() if k.startswith(("snapshots", "current"))}
    assert time.monotonic() - started < 60
    # With the fault gone, the next sync completes.
    setup.server.faults.set([])
    report = sync(setup)
    assert report.ok, report.message
    assert report.published and report.published != current
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


def test_a_sync_killed_at_random_points_leaves_a_served_snapshot_and_the_next_completes(setup):
    setup.write_config(trees=("ep11", "v16", "v5"))
    assert sync(setup).ok
    env = dict(os.environ, PYTHONPATH=SRC)
    command = [sys.executable, "-m", "updmirror", "-q", "sync", "-c", str(setup.config_path)]
    # How long a whole run takes here (start-up included), so the kills land inside runs.
    publish(setup.vendor_root)
    started = time.monotonic()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                   check=True)
    duration = time.monotonic() - started
    publish(setup.vendor_root)
    rng = random.Random(20261129)
    kills = attempts = 0
    while kills < 20 and attempts < 60:
        attempts += 1
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, max(0.3, 0.95 * duration)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        assert_snapshot_complete(setup.store)
        if proc.returncode == 0:
            publish(setup.vendor_root)   # keep giving the next run work to be killed in
    assert kills >= 20, f"only {kills} of {attempts} runs were still going when killed"
    report = sync(setup)
    assert report.ok, report.message
    assert_snapshot_complete(setup.store)
    # What earlier killed runs verified was re-used, not fetched again.
    assert report.files_reused > 0

def test_a_mirror_can_sync_from_a_folder(setup, tmp_path):
    text = setup.config_path.read_text()
    text = text.replace(f'url = "{setup.server.url}"', f'url = "{setup.vendor_root / "www"}"')
    setup.config_path.write_text(text.replace('username = "EAV-0123456789"\n', "")
                                 .replace(f'password = "{PASSWORD}"\n', ""))
    report = sync(setup)
    assert report.ok, report.message
    assert_snapshot_complete(setup.store)
    assert setup.server.requests == []
