"""Every way an upstream can fail, against the simulated vendor over real
HTTP on loopback. For each: the served snapshot is unchanged and nothing of
the failed run is servable, `updmirror sync` exits 1 naming the cause, the
status facts say the last sync failed and why, and the next good upstream
brings the mirror current."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from synckit import PASSWORD, assert_snapshot_complete

from diskkit import need
from serverkit import SRC
from serverkit import free_port as closed_port
from updmirror.serve import tables
from updmirror.status import collect_status
from updmirror.sync.engine import run_sync
from updmirror.vendor.faults import Fault
from updmirror.vendor.publish import publish
from updmirror.vendor.server import ESCAPES

OTHER_KEY = "0123456789ABCDEF0123456789ABCDEF01234567"


def wrong_password(text: str, setup) -> str:
    return text.replace(f'password = "{PASSWORD}"', 'password = "not-the-licence-password"')


def refused(text: str, setup) -> str:
    return text.replace(setup.server.url, f"http://127.0.0.1:{closed_port()}/")


def unknown_host(text: str, setup) -> str:
    return text.replace("127.0.0.1", f"mirror-{setup.server.port}.updmirror-test.invalid")


def another_key(text: str, setup) -> str:
    # The files are signed, but not by the key the mirror trusts.
    return re.sub(r"signing_keys = \[.*\]", f'signing_keys = ["{OTHER_KEY}"]', text)


# (id, faults on the vendor, change to mirror.toml, what the message says)
CASES = [
    ("wrong-credentials", [], wrong_password, r"401|credentials|password"),
    ("401", [Fault("status", "eset_upd/*", arg=401)], None, r"401"),
    ("403", [Fault("status", "eset_upd/*", arg=403)], None, r"403"),
    ("404-index", [Fault("status", "eset_upd/*", arg=404)], None, r"404"),
    ("404-file", [Fault("status", "*.nup", times=1, arg=404)], None, r"404"),
    ("429-retry-after", [Fault("status", "*.nup", arg="429,1")], None, r"429"),
    ("500", [Fault("status", "*.nup", arg=500)], None, r"500"),
    ("refused-connection", [], refused, r"refused|connect"),
    ("dns-failure", [], unknown_host, r"resolve|name|DNS"),
    ("stall", [Fault("stall", "*.nup", arg=5)], None, r"stall|no data|bytes/s"),
    ("slow-drip", [Fault("slow", "*.nup", arg=200)], None, r"slow|speed|bytes/s"),
    ("truncated", [Fault("truncate", "*.nup")], None, r"truncat|ended|short|incomplete|fewer"),
    ("endless-file", [Fault("endless", "*.nup", arg=64)], None, r"more than|large|exceed|limit"),
    ("endless-index", [Fault("endless", "eset_upd/*", arg=64)], None, r"more than|large|exceed|limit"),
    ("oversize-index", [Fault("pad", arg=17)], None, r"more than|large|exceed|limit"),
    ("wrong-size", [Fault("wrong_size", arg=2)], None, r"size|index says"),
    ("bad-crc", [Fault("bad_crc", "*.nup", times=1)], None, r"CRC"),
    ("bad-signature", [Fault("bad_signature", "*.nup", times=1)], None, r"signature"),
    ("another-key", [], another_key, r"signature|key"),
    ("html-index", [Fault("captive_portal", "eset_upd/*")], None, r"HTML"),
    *[(f"escape-{i}", [Fault("escape", arg=i)], None,
       r"leave the repository|another host|another server|'\.\.'|percent|not allowed|backslash|scheme|network-path")
      for i in range(len(ESCAPES))],
    ("index-drops-most-files", [Fault("shrink", arg=10)], None, r"max_drop"),
]


@pytest.fixture(scope="session")
def synced_template(pristine_vendor, tmp_path_factory):
    """A store synced once from the pristine vendor; each case starts from a copy."""
    from synckit import USER, Setup

    from updmirror.vendor.generate import VendorState
    from updmirror.vendor.server import VendorServer

    tmp = tmp_path_factory.mktemp("synced")
    vendor = tmp / "vendor"
    shutil.copytree(pristine_vendor, vendor)
    with VendorServer(vendor / "www", USER, PASSWORD) as server:
        s = Setup(vendor, server, tmp / "store", tmp / "mirror.toml", VendorState.load(vendor).fingerprint)
        s.write_config()
        import asyncio
        assert asyncio.run(run_sync(s.cfg())).ok
    return tmp / "store"


def cli_sync(setup, dns: bool) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "updmirror", "sync", "-c", str(setup.config_path)]
    if dns:
        # A real name lookup that fails, without leaving loopback: in a mount
        # namespace of its own, the sync's resolver asks 127.0.0.1, where no one answers.
        resolv = setup.config_path.parent / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        if shutil.which("unshare") is None:
            need("unshare is not installed (util-linux)")
        command = ["unshare", "--mount", "--", "sh", "-c",
                   f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"', "sync", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, PYTHONPATH=SRC))


def served(store) -> dict[bytes, int]:
    """What the server would serve from the store: path -> size."""
    return {path: entry.size for path, entry in tables.build(store, 7200, "ep11").files.items()}


@pytest.mark.parametrize("name, faults, change, cause", CASES, ids=[c[0] for c in CASES])
def test_an_upstream_fault_changes_nothing_served_and_the_next_good_upstream_heals(
        setup, synced_template, name, faults, change, cause):
    subprocess.run(["cp", "-a", str(synced_template), str(setup.store_root)], check=True)
    store = setup.store
    before_id, before = store.current().id, served(store)
    publish(setup.vendor_root)
    good_config = setup.config_path.read_text()
    if change is not None:
        changed = change(good_config, setup)
        assert changed != good_config
        setup.config_path.write_text(changed)
    setup.server.faults.set(faults)

    started = time.monotonic()
    failed = cli_sync(setup, dns=change is unknown_host)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert time.monotonic() - started < 120
    assert re.search(cause, failed.stderr, re.I), failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr and PASSWORD not in failed.stdout + failed.stderr
    # Nothing clients see changed, and nothing of the failed run is servable.
    assert store.current().id == before_id and served(store) == before
    assert [s.id for s in store.snapshots()] == [before_id]
    assert_snapshot_complete(store)
    facts = collect_status(store, setup.cfg(), {})
    assert facts["state"] == "failed" and re.search(cause, facts["last_sync"]["message"], re.I), facts["last_sync"]
    assert PASSWORD not in str(facts)

    setup.config_path.write_text(good_config)
    setup.server.faults.set([])
    report = __import__("asyncio").run(run_sync(setup.cfg()))
    assert report.ok, report.message
    assert store.current().id != before_id
    assert_snapshot_complete(store)
    assert collect_status(store, setup.cfg(), {})["state"] == "fresh"
