"""Shared pieces of the sync tests: the mirror set-up and its checks."""

from __future__ import annotations

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

from updmirror import config
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer
from updmirror.store import Store
from updmirror.vendor.server import VendorServer

USER = "EAV-0123456789"
PASSWORD = "Pw-9x7Q2mZk"
SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Setup:
    vendor_root: Path
    server: VendorServer
    store_root: Path
    config_path: Path
    fingerprint: str

    def cfg(self) -> config.Config:
        return config.load(self.config_path)

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    def write_config(self, trees=("ep11", "v16"), extra_upstream: str = "", extra_mirror: str = "") -> None:
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
    """Every file every served index lists is in the snapshot, with its size."""
    snap = store.current()
    assert snap is not None
    for entry in snap.manifest["indexes"]:
        index = UpdateVer.parse((snap.tree / entry["path"]).read_bytes())
        for m in modules(index, "http://mirror/" + entry["path"]):
            f = snap.tree / m.path.lstrip("/")
            assert f.is_file(), f"{m.path} listed by {entry['path']} is missing"
            assert f.stat().st_size == m.size
