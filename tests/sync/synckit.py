"""Shared pieces of the sync tests: the mirror set-up and its checks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import vendor_real
from mirrorkit import assert_whole
from serverkit import SRC
from updmirror import config
from updmirror.eset.modules import modules
from updmirror.eset.trees import TREES
from updmirror.eset.updatever import UpdateVer
from updmirror.store import Store
from updmirror.sync.engine import run_sync
from updmirror.vendor.server import VendorServer

USER = "EAV-0123456789"
PASSWORD = "Pw-9x7Q2mZk"
#: Where the real 2021 index is published (eset_upd/v9/update.ver).
VENDOR_PATH = TREES[vendor_real.INDEX_TREE].index_paths()[0]


@dataclass
class Setup:
    vendor_root: Path
    server: VendorServer
    store_root: Path
    config_path: Path
    fingerprint: str
    #: The simulated vendor's DSA key, which alone signs its modules of 2010.
    legacy_key_id: str = ""

    def cfg(self) -> config.Config:
        return config.load(self.config_path)

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    def write_config(self, trees=("ep11", "v16"), extra_upstream: str = "", extra_mirror: str = "",
                     extra_verify: str = "") -> None:
        self.config_path.write_text(f"""
[upstream]
url = "{self.server.url}"
username = "{USER}"
password = "{PASSWORD}"
stall_timeout = 1.5
min_speed = 20000
retries = 1
parallel = 4
{extra_upstream}

[mirror]
root = "{self.store_root}"
trees = {list(trees)!r}
channels = ["regular"]
grace = "1h"
{extra_mirror}

[verify]
signing_keys = ["{self.fingerprint}"]
{f'legacy_key_ids = ["{self.legacy_key_id}"]' if self.legacy_key_id else ""}
{extra_verify}
""".replace("'", '"'))


@dataclass
class Served:
    port: int
    stderr: str = ""


@contextmanager
def serving(setup: Setup, workers: int = 2) -> Iterator[Served]:
    """`updmirror serve` on the mirror's store (an [http] table is added to its
    mirror.toml); on exit, stopped with SIGTERM and its stderr kept."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with setup.config_path.open("a") as f:
        f.write(f'\n[http]\nlisten = ["127.0.0.1:{port}"]\nworkers = {workers}\n')
    proc = subprocess.Popen([sys.executable, "-m", "updmirror", "serve", "-c", str(setup.config_path)],
                            env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    served = Served(port)
    try:
        until = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < until and proc.poll() is None, "the server did not start"
                time.sleep(0.1)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, served.stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, served.stderr = proc.communicate()


def assert_snapshot_complete(store: Store) -> None:
    """Every file every served index lists is in the snapshot, with its size.

    A section without size= (the vendor has some) is checked by the file's
    own inner size and CRC instead.
    """
    snap = store.current()
    assert snap is not None
    for entry in snap.manifest["indexes"]:
        index = UpdateVer.parse((snap.tree / entry["path"]).read_bytes())
        for m in modules(index, "http://mirror/" + entry["path"]):
            f = snap.tree / m.path.lstrip("/")
            assert f.is_file(), f"{m.path} listed by {entry['path']} is missing"
            assert_whole(f.read_bytes(), m.size, m.path)


def mirror_toml(tmp: Path, upstream_url: str, trees=(vendor_real.INDEX_TREE,), upstream: str = "",
                http_port: int | None = None, auth: bool = True, name: str = "mirror") -> Path:
    """tmp/NAME.toml with every default (no [verify], layout "auto"), the store in tmp/NAME,
    and [http] on `http_port` when given; `upstream` adds lines to [upstream]."""
    creds = f'username = "{USER}"\npassword = "{PASSWORD}"\n' if auth else ""
    text = (f'[upstream]\nurl = "{upstream_url}"\n{creds}retries = 0\n{upstream}\n'
            f'[mirror]\nroot = "{tmp / name}"\ntrees = {json.dumps(list(trees))}\n')
    if http_port is not None:
        text += f'\n[http]\nlisten = ["127.0.0.1:{http_port}"]\nworkers = 1\n'
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def sync(path: Path):
    return asyncio.run(run_sync(config.load(path)))


def served_index(store_root: Path, index_path: str = VENDOR_PATH) -> bytes:
    return (Store(store_root).current().tree / index_path).read_bytes()
