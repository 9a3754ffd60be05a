"""A mirror synced from the simulated vendor over real HTTP on loopback, for
the tests of the rooms that read the store (the shared folder, the exported
web-server configurations): release 1, then the vendor's next release.

Everything lives under a folder other accounts can reach (`public_dir`):
nginx's and Apache's workers (www-data) and smbd (the share's account) read
the store or the folder as users other than the test's.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from updmirror import config
from updmirror.eset import nup
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer
from updmirror.store import Store
from updmirror.sync.engine import SyncReport, run_sync
from updmirror.vendor.generate import VendorState
from updmirror.vendor.publish import publish
from updmirror.vendor.server import VendorServer

USER = "EAV-0123456789"
PASSWORD = "Pw-9x7Q2mZk"
TREES = ("ep11", "v16", "v5")


def public_dir(prefix: str = "updmirror-test-") -> Path:
    """A new folder that every account can reach (pytest's own are 0700); remove it yourself."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class Mirror:
    vendor_root: Path
    server: VendorServer | None
    root: Path                 # holds store/, mirror.toml and whatever a test adds
    fingerprint: str

    @property
    def store_root(self) -> Path:
        return self.root / "store"

    @property
    def config_path(self) -> Path:
        return self.root / "mirror.toml"

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    def write_config(self, *, trees=TREES, channels=("regular",), grace: str = "1h",
                     extra: dict[str, dict] | None = None) -> Path:
        """mirror.toml for this mirror; `extra` adds keys to tables ({"http": {...}})."""
        tables: dict[str, dict] = {
            "upstream": {"url": self.server.url if self.server else "http://127.0.0.1:9/", "username": USER, "password": PASSWORD,
                         "retries": 1, "parallel": 4},
            "mirror": {"root": str(self.store_root), "trees": list(trees), "channels": list(channels),
                       "grace": grace},
            # The simulated vendor's legacy DSA key, which alone signs its modules of 2010.
            "verify": {"signing_keys": [self.fingerprint],
                       "legacy_key_ids": [VendorState.load(self.vendor_root).other_fingerprint[-16:]]},
        }
        for name, keys in (extra or {}).items():
            tables.setdefault(name, {}).update(keys)
        lines = []
        for name, keys in tables.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
            lines.append("")
        self.config_path.write_text("\n".join(lines))
        return self.config_path

    def cfg(self) -> config.Config:
        return config.load(self.config_path)

    def sync(self) -> SyncReport:
        report = asyncio.run(run_sync(self.cfg()))
        assert report.ok, report.message
        return report

    def release(self) -> None:
        """The vendor publishes its next release (the mirror does not sync it yet)."""
        publish(self.vendor_root)


def listed_files(index: bytes, index_path: str) -> list[tuple[str, int | None]]:
    """(path, size) of every file an index lists, as a client resolves it."""
    parsed = UpdateVer.parse(index, source=index_path)
    return [(m.path, m.size) for m in modules(parsed, "http://mirror/" + index_path.lstrip("/"))]


def assert_whole(data: bytes, size: int | None, shown: str) -> None:
    """A file is what its index entry promises: `size=` bytes, or, for a section
    without size= (the vendor has some), a .nup whose inner size and CRC hold."""
    if size is None:
        nup.inspect(io.BytesIO(data), shown)
    else:
        assert len(data) == size, f"{shown}: {len(data)} bytes, the index says size={size}"


def copy_store(source: Path, target: Path) -> None:
    """Copy a store keeping its hard links (snapshots share pool files by them)."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True, timeout=120)


class StoreCache:
    """Stores synced from the simulated vendor once per session, at release 1
    and after release 2, for each (trees, channels) a test asks for."""

    def __init__(self, pristine: Path, fingerprint: str, work: Path):
        self.pristine, self.fingerprint, self.work = pristine, fingerprint, work
        self._built: dict[tuple, tuple[Path, Path]] = {}

    def get(self, trees: tuple[str, ...], channels: tuple[str, ...]) -> tuple[Path, Path]:
        key = (tuple(trees), tuple(channels))
        if key not in self._built:
            m = start_mirror(self.pristine, self.fingerprint)
            try:
                m.write_config(trees=trees, channels=channels)
                m.sync()
                folder = self.work / f"{'-'.join(trees)}_{'-'.join(channels)}"
                folder.mkdir(parents=True)
                copy_store(m.store_root, folder / "release1")
                m.release()
                m.sync()
                copy_store(m.store_root, folder / "release2")
            finally:
                stop_mirror(m)
            self._built[key] = (folder / "release1", folder / "release2")
        return self._built[key]


class CachedMirror(Mirror):
    """A Mirror whose syncs are copies of the cached stores: the same stores
    a real sync makes, without the vendor's server, for tests that need a
    synced store but do not watch the sync itself."""

    cache: StoreCache
    releases: int = 0
    _trees: tuple = TREES
    _channels: tuple = ("regular",)

    def write_config(self, *, trees=TREES, channels=("regular",), **kw) -> Path:
        self._trees, self._channels = tuple(trees), tuple(channels)
        return super().write_config(trees=trees, channels=channels, **kw)

    def sync(self):
        release1, release2 = self.cache.get(self._trees, self._channels)
        copy_store(release1 if self.releases == 0 else release2, self.store_root)

    def release(self) -> None:
        assert self.releases == 0, "the cache holds two releases"
        self.releases += 1


def start_mirror(pristine: Path, fingerprint: str) -> Mirror:
    root = public_dir("updmirror-mirror-")
    vendor = root / "vendor"
    shutil.copytree(pristine, vendor)
    server = VendorServer(vendor / "www", USER, PASSWORD).start()
    mirror = Mirror(vendor, server, root, fingerprint)
    mirror.write_config()
    return mirror


def stop_mirror(mirror: Mirror) -> None:
    mirror.server.stop()
    shutil.rmtree(mirror.root, ignore_errors=True)
