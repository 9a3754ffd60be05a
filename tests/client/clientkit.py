"""Shared pieces of the client tests: vendor releases to serve, updates to run, DIR to inspect."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from serverkit import SRC
from serverkit import free_port as closed_port
from serverkit import updmirror_cli as cli
from updmirror.client import Client, Endpoint, Source, installed
from updmirror.vendor.server import VendorServer

USER = "EAV-0123456789"
PASSWORD = "Cl1ent-Pw-77"


@dataclass(frozen=True)
class Releases:
    """One simulated vendor repository at two releases (each a vendor root of its own)."""

    first: Path
    second: Path
    fingerprint: str
    #: The simulated vendor's legacy DSA key, which alone signs its modules of 2010.
    legacy_key_id: str

    def serve(self, release: Path, password: str = PASSWORD, user: str | None = USER) -> VendorServer:
        return VendorServer(release / "www", user, password).start()


def endpoint(releases: Releases, tree: str = "ep11", platform: str = "x64", language: int | None = 1033,
             **kw) -> Endpoint:
    kw.setdefault("legacy_key_ids", (releases.legacy_key_id,))
    return Endpoint(tree, platform, language, pinned=(releases.fingerprint,), **kw)


def source(where: str, user: str | None = USER, password: str | None = PASSWORD, **kw) -> Source:
    return Source.parse(where, user=user, password=password, **kw)


def update(dest: Path, sources, ep: Endpoint, progress=None, **client_kw):
    """One update through a fresh Client with short timeouts; returns the UpdateResult."""
    client_kw = {"connect_timeout": 2.0, "stall_timeout": 3.0, "retries": 1, "backoff_base": 0.01,
                 **client_kw}

    async def go():
        async with Client(**client_kw) as client:
            return await client.update(dest, sources, ep, progress=progress)

    return asyncio.run(go())


def state(dest: Path) -> tuple[int | None, frozenset[tuple[str, str]]]:
    """What DIR holds, by content: the database version and (key, SHA-256) of every module file.

    Also checks that DIR is whole: every file its record lists is there with its size.
    """
    now = installed(dest)
    files = set()
    for m in now.modules:
        path = now.module_file(m.key)
        data = path.read_bytes()
        assert m.size is None or len(data) == m.size, f"{path}: {len(data)} bytes, record says {m.size}"
        files.add((m.key, hashlib.sha256(data).hexdigest()))
    return now.version, frozenset(files)


def copy_dir(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def wait_listening(proc: subprocess.Popen, port: int, what: str, timeout: float = 20) -> None:
    """Until `proc` accepts connections on `port` (bounded); its output if it exits instead."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout:g} s")


class VendorProcess:
    """`updmirror vendor serve` as a process of its own, so that a test can kill it."""

    def __init__(self, root: Path, port: int, password: str = PASSWORD, faults: tuple[str, ...] = ()):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "updmirror", "vendor", "serve", "--root", str(root), "--listen",
                f"127.0.0.1:{port}", "--user", USER, "--password", password]
        for f in faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(args, env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def wait_ready(self) -> VendorProcess:
        wait_listening(self.proc, self.port, "vendor serve")
        return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> VendorProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class Mirror:
    """An updmirror synced from a vendor server and serving it (`updmirror serve`, a process)."""

    def __init__(self, tmp: Path, vendor_url: str, fingerprint: str, legacy_key_id: str,
                 trees: tuple[str, ...] = ("ep11", "v5")):
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.config = tmp / "mirror.toml"
        self.config.write_text(f"""
[upstream]
url = "{vendor_url}"
username = "{USER}"
password = "{PASSWORD}"
retries = 1

[mirror]
root = "{tmp / 'store'}"
trees = [{', '.join(f'"{t}"' for t in trees)}]
channels = ["regular"]

[verify]
signing_keys = ["{fingerprint}"]
legacy_key_ids = ["{legacy_key_id}"]

[http]
listen = ["127.0.0.1:{self.port}"]
workers = 1
default_tree = "{trees[0]}"
""")
        self.proc: subprocess.Popen | None = None

    def sync(self) -> None:
        done = cli("-q", "sync", "-c", str(self.config), timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def __enter__(self) -> Mirror:
        self.sync()
        self.proc = subprocess.Popen([sys.executable, "-m", "updmirror", "-q", "serve", "-c", str(self.config)],
                                     env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        wait_listening(self.proc, self.port, "updmirror serve")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def product_mirror_layout(www: Path, index_path: str, folder: Path, mode: int | None = None) -> Path:
    """`folder` laid out as a vendor product's own mirror: `dll/update.ver` (or `update.ver`)
    at the root, module files beside it under bare names (`nod0001.nup`, ...), no [HOSTS]."""
    from updmirror.eset.modules import is_module_section, modules
    from updmirror.eset.updatever import UpdateVer

    index = UpdateVer.parse((www / index_path).read_bytes())
    index.remove_sections({"HOSTS"})
    where = folder / ("dll" if index_path.endswith("dll/update.ver") else "")
    where.mkdir(parents=True, exist_ok=True)
    paths = {m.section: m.path for m in modules(index, "http://v/" + index_path)}
    for n, section in enumerate(s for s in index.sections if is_module_section(s)):
        name = f"nod{n:04X}.nup"
        shutil.copyfile(www / paths[section.name].lstrip("/"), where / name)
        section.set("file", name)
    (where / "update.ver").write_bytes(index.to_bytes())
    if mode is not None:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else mode)
    return folder


class RunningUpdate:
    """A client process in the middle of an update of `dest` (from a source dripping its files),
    for as long as the `with` block lasts."""

    def __init__(self, releases: Releases, dest: Path, tmp: Path):
        self.dest = dest
        self.vendor = VendorProcess(releases.second, closed_port(), faults=("slow:2000@*.nup",))
        (tmp / "running-pw").write_text(PASSWORD)
        self.args = ["client", "update", "--source", self.vendor.url, "--tree", "ep11", "--dest", str(dest),
                     "--user", USER, "--password-file", str(tmp / "running-pw"),
                     "--signing-key", releases.fingerprint]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> RunningUpdate:
        self.vendor.wait_ready()
        self.proc = subprocess.Popen([sys.executable, "-m", "updmirror", *self.args],
                                     env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        lock = self.dest / ".lock"
        until = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().strip() == str(self.proc.pid)):
            if time.monotonic() > until or self.proc.poll() is not None:
                raise AssertionError("the first update did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.vendor.kill()
