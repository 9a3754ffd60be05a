"""A chain of mirrors on loopback: the simulated vendor -> A -> B -> C.

Each mirror is its own store and mirror.toml, synced by one-off `updmirror
sync` runs and served by its own `updmirror serve` process with its own
Basic credentials; the mirror below uses them as its upstream's. Every wait
is bounded.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from serverkit import ServerProcess, free_port, updmirror_cli
from updmirror.store import Store
from updmirror.vendor.generate import VendorState
from updmirror.vendor.publish import publish
from updmirror.vendor.server import VendorServer

VENDOR_USER, VENDOR_PASSWORD = "EAV-0123456789", "Pw-9x7Q2mZk"
TREES = ("ep11",)
INDEX = "eset_upd/ep11/dll/update.ver"


@dataclass
class Tier:
    """One mirror of the chain."""

    name: str
    root: Path
    upstream_url: str
    upstream_user: str
    upstream_password: str
    fingerprint: str
    legacy_key_id: str
    port: int = field(default_factory=free_port)
    user: str = ""
    password: str = ""
    interval: str = "1h"
    #: "serve" (synced by `sync()`), or "run": the daemon, which syncs by itself.
    command: str = "serve"
    workers: int = 1
    server: ServerProcess | None = None

    def __post_init__(self) -> None:
        self.user = f"lower-of-{self.name}"
        self.password = f"pw-{self.name}-7Qx"
        self.root.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(4)).decode()
        (self.root / "htpasswd").write_text(f"{self.user}:{hashed}\n")
        self.write_config()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def config_path(self) -> Path:
        return self.root / "mirror.toml"

    @property
    def store(self) -> Store:
        return Store(self.root / "store")

    def write_config(self) -> None:
        self.config_path.write_text(f"""
[upstream]
url = "{self.upstream_url}"
username = "{self.upstream_user}"
password = "{self.upstream_password}"
retries = 1
parallel = 4

[mirror]
name = "{self.name}"
root = "{self.root / 'store'}"
trees = {json.dumps(list(TREES))}
interval = "{self.interval}"
grace = "1h"

[verify]
signing_keys = ["{self.fingerprint}"]
legacy_key_ids = ["{self.legacy_key_id}"]

[http]
listen = ["127.0.0.1:{self.port}"]
workers = {self.workers}
auth = "basic"
htpasswd = "{self.root / 'htpasswd'}"
""")

    def sync(self, *, ok: bool = True) -> dict:
        """One `updmirror sync --json`; its report."""
        done = updmirror_cli("sync", "--json", "-c", str(self.config_path))
        assert (done.returncode == 0) == ok, f"{self.name}: sync exit {done.returncode}: {done.stderr[-2000:]}"
        return json.loads(done.stdout)

    def serve(self) -> Tier:
        assert self.server is None
        self.server = ServerProcess(self.config_path, self.port, command=self.command).wait_ready(30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(30)
            self.server = None


@dataclass
class Chain:
    vendor_root: Path
    vendor: VendorServer
    tiers: list[Tier]

    def __getitem__(self, name: str) -> Tier:
        return next(t for t in self.tiers if t.name == name)

    def sync_all(self) -> dict[str, dict]:
        """Sync A, B, C in turn (each from the one above), each once its upper
        mirror's server serves what that one published; their reports."""
        reports = {}
        for tier in self.tiers:
            reports[tier.name] = report = tier.sync()
            if report["published"]:
                wait_serving(tier, report["published"])
        return reports

    def release(self) -> None:
        """The vendor publishes its next release."""
        publish(self.vendor_root)

    def close(self) -> None:
        for tier in self.tiers:
            tier.stop()
        self.vendor.stop()


def build_chain(pristine_vendor: Path, work: Path, names=("A", "B", "C"),
                intervals: dict[str, str] | None = None, command: str = "serve",
                workers: int = 1) -> Chain:
    """The vendor (a copy of `pristine_vendor`) and mirrors `names`, each
    served (not synced yet) and configured to sync from the one above;
    `intervals`: [mirror] interval by name (1h by default); `command`:
    "run" for daemons that sync by themselves; `workers`: each one's."""
    vendor_root = work / "vendor"
    shutil.copytree(pristine_vendor, vendor_root)
    state = VendorState.load(vendor_root)
    vendor = VendorServer(vendor_root / "www", VENDOR_USER, VENDOR_PASSWORD).start()
    tiers: list[Tier] = []
    url, user, password = vendor.url, VENDOR_USER, VENDOR_PASSWORD
    try:
        for name in names:
            tier = Tier(name, work / name, url, user, password, state.fingerprint, state.other_fingerprint[-16:],
                        interval=(intervals or {}).get(name, "1h"), command=command, workers=workers)
            tiers.append(tier.serve())
            url, user, password = tier.url, tier.user, tier.password
    except BaseException:
        Chain(vendor_root, vendor, tiers).close()
        raise
    return Chain(vendor_root, vendor, tiers)


def wait_serving(tier: Tier, snapshot: str, timeout: float = 10.0) -> None:
    """Until `tier`'s server serves `snapshot` (it looks for a new one once a second)."""
    until = time.monotonic() + timeout
    while tier_manifest(tier)["snapshot"] != snapshot:
        assert time.monotonic() < until, f"{tier.name} does not serve snapshot {snapshot}"
        time.sleep(0.1)


def get(tier: Tier, path: str) -> bytes:
    """GET `path` of `tier`'s server with the credentials of the mirrors below it."""
    request = urllib.request.Request(tier.url + path.lstrip("/"))
    token = base64.b64encode(f"{tier.user}:{tier.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read(16 * 1024 * 1024)


def tier_manifest(tier: Tier) -> dict:
    """The manifest `tier` serves to the mirrors below it."""
    return json.loads(get(tier, "updmirror/manifest.json"))
