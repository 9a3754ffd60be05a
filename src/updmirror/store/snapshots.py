"""The mirror's store on disk: verified files, immutable snapshots, one pointer.

Layout under the store root::

    pool/<repository path>        verified module files; immutable once placed
    partial/<key>.part            downloads in progress, resumed by range requests
    snapshots/<id>/tree/...       what clients see: hard links into pool/ and the
                                  rewritten indexes, at the vendor's paths
    snapshots/<id>/manifest.json  what the snapshot holds (indexes, files, sizes)
    current -> snapshots/<id>     swapped atomically by rename(2)
    state/                        run records and upstream validators
    lock                          held (flock) by the one running sync

A pool file only ever appears by rename after verification, so "present in
the pool with the right size" means "verified". Snapshots share pool files
through hard links: an unchanged file costs no copy, and a pool file whose
link count falls to 1 belongs to no snapshot and may be collected.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from updmirror.eset.modules import normalise_path
from updmirror.files import fsync_path, point_symlink, replace_durably, write_json, write_new

from .records import append_run

MANIFEST = "manifest.json"
#: Under state/: what the last published sync learnt of each index upstream.
UPSTREAM_STATE = "upstream.json"


@dataclass
class Snapshot:
    """One published, immutable state of the served tree."""

    id: str
    dir: Path
    manifest: dict = field(repr=False)

    @property
    def tree(self) -> Path:
        return self.dir / "tree"

    @property
    def created(self) -> float:
        return float(self.manifest.get("created", 0))

    @property
    def retired(self) -> float | None:
        """When a newer snapshot replaced this one (None while current)."""
        value = self.manifest.get("retired")
        return None if value is None else float(value)


def load_snapshot(directory: Path) -> Snapshot | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return Snapshot(directory.name, directory, manifest)


class Store:
    """The store at `root`. Readers (the server) use only the read methods."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.pool = self.root / "pool"
        self.partial = self.root / "partial"
        self.snapshots_dir = self.root / "snapshots"
        self.state = self.root / "state"
        self.current_link = self.root / "current"

    # -- reading ------------------------------------------------------------
    def current(self) -> Snapshot | None:
        """The current snapshot; None when none is published or `current` is broken."""
        return self.current_state()[0]

    def current_state(self) -> tuple[Snapshot | None, str | None]:
        """(the current snapshot, None), or (None, why `current` cannot be
        followed); (None, None) while nothing is published yet."""
        directory, problem = self.locate_current()
        if directory is None:
            return None, problem
        snapshot = load_snapshot(directory)
        if snapshot is None:
            return None, f"{self.current_link} points at {directory}, whose {MANIFEST} cannot be read"
        return snapshot, None

    def locate_current(self) -> tuple[Path | None, str | None]:
        """The folder `current` points at, checked to be a snapshot of this
        store, without reading its manifest; or (None, why not)."""
        link = self.current_link
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            if self._has_snapshots():
                return None, f"{link} is missing, though snapshots exist"
            return None, None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return None, f"{link} is not a symbolic link"
            return None, f"{link} cannot be read ({exc.strerror})"
        directory = (self.root / target).resolve()
        if directory.parent != self.snapshots_dir.resolve() or directory.name.startswith("."):
            return None, f"{link} points at {target}, which is not a snapshot of this store"
        if not (directory / MANIFEST).is_file():
            return None, f"{link} points at {target}, which is missing or incomplete"
        return directory, None

    def _has_snapshots(self) -> bool:
        try:
            return any(not e.name.startswith(".") for e in self.snapshots_dir.iterdir())
        except OSError:
            return False

    def snapshots(self) -> list[Snapshot]:
        """Every complete snapshot, newest first."""
        found = []
        try:
            entries = list(self.snapshots_dir.iterdir())
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            snap = load_snapshot(entry)
            if snap is not None:
                found.append(snap)
        found.sort(key=lambda s: s.id, reverse=True)
        return found

    def in_grace(self, grace_seconds: float, now: float | None = None) -> list[Snapshot]:
        """Superseded snapshots whose files are still served, newest first.

        Those retired less than the grace ago, and one the sync replaced but
        has not marked retired yet (the moment between the switch and the
        clean-up): a client that read its index must still get its files.
        """
        now = time.time() if now is None else now
        current = self.current()
        return [snap for snap in self.snapshots()
                if not (current and snap.id == current.id)
                and (snap.retired is None or now - snap.retired < grace_seconds)]

    def served_folders(self) -> tuple[Path, Path]:
        """Where a web server in front of the store looks a request path up, in order.

        First the current snapshot's tree *through* the `current` link, which
        the web server resolves per request, so a switch is one rename for it
        too; then the pool, which holds every module file of every snapshot
        still in its grace period at the same path (a pool file goes only when
        no snapshot links it). Indexes are never in the pool: an index always
        comes from the current snapshot.
        """
        return self.current_link / "tree", self.pool

    def pool_file(self, path: str) -> Path:
        """Where the verified file for repository `path` lives (confined)."""
        rel = normalise_path(path, "store")[1:]
        return self.pool / rel

    def partial_file(self, key: str) -> Path:
        """Where the download of `key` is written (by the fetcher) before it is
        verified and added to the pool; kept between runs for a resume."""
        return self.partial / f"{key}.part"

    def load_state(self, name: str) -> dict:
        """A small JSON state file of state/ ({} when missing or unreadable)."""
        try:
            data = json.loads((self.state / name).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load_upstream_state(self) -> dict:
        """What the last published sync learnt of each index upstream
        (validators, layout, plain or RAR), by index; {} when there is none."""
        return self.load_state(UPSTREAM_STATE)

    # -- writing (the sync, under the lock) -----------------------------------
    def ensure(self) -> None:
        for d in (self.pool, self.partial, self.snapshots_dir, self.state):
            d.mkdir(parents=True, exist_ok=True)

    def new_snapshot(self) -> SnapshotBuilder:
        self.ensure()
        return SnapshotBuilder(self)

    def add_to_pool(self, verified: Path, path: str) -> Path:
        """Move a verified download (a file under partial/) into the pool as
        repository `path`, flushed first: a pool file is never one that a power
        cut could leave empty. Blocking (fsync): call it off an event loop."""
        target = self.pool_file(path)
        if Path(verified).parent != self.partial:
            raise ValueError(f"{verified} is not a download of this store (under {self.partial})")
        target.parent.mkdir(parents=True, exist_ok=True)
        # The folder is flushed with the snapshot that links the file (publish).
        replace_durably(verified, target, sync_folder=False)
        return target

    def save_state(self, name: str, state: dict) -> None:
        """Replace a small JSON state file of state/, atomically."""
        self.state.mkdir(parents=True, exist_ok=True)
        write_json(self.state / name, state)

    def save_upstream_state(self, state: dict) -> None:
        """Replace what load_upstream_state() returns, atomically."""
        self.save_state(UPSTREAM_STATE, state)

    def record_run(self, record: dict) -> None:
        """Append a sync run's record (records.append_run: raises StoreError naming the file)."""
        append_run(self.state, record)

    def clear_partials(self) -> int:
        """Drop downloads left in partial/ (after a publish: none is worth resuming)."""
        count = 0
        for part in self.partial.glob("*.part"):
            part.unlink(missing_ok=True)
            count += 1
        return count

    def retire_and_clean(self, grace_seconds: float, now: float | None = None) -> list[str]:
        """Mark superseded snapshots retired, delete those past the grace,
        then drop pool files no snapshot links to. Returns removed ids."""
        now = time.time() if now is None else now
        current = self.current()
        removed = []
        for snap in self.snapshots():
            if current and snap.id == current.id:
                continue
            if snap.retired is None:
                snap.manifest["retired"] = now
                write_json(snap.dir / MANIFEST, snap.manifest)
            elif now - snap.retired >= grace_seconds:
                shutil.rmtree(snap.dir, ignore_errors=True)
                removed.append(snap.id)
        for d in self.snapshots_dir.glob(".building-*"):
            shutil.rmtree(d, ignore_errors=True)
        self.collect_pool()
        return removed

    def collect_pool(self) -> int:
        """Remove pool files that no snapshot links to any more."""
        count = 0
        for path in _walk_files(self.pool):
            try:
                if path.stat().st_nlink <= 1:
                    path.unlink()
                    count += 1
            except FileNotFoundError:
                pass
        return count


class SnapshotBuilder:
    """Builds a snapshot in a hidden folder, then publishes it in one step."""

    def __init__(self, store: Store):
        self.store = store
        self.id = _new_id(store)
        self.dir = store.snapshots_dir / f".building-{self.id}"
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "tree").mkdir(parents=True)

    def _target(self, path: str) -> Path:
        target = self.dir / "tree" / normalise_path(path, "snapshot")[1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def link(self, path: str, pool_file: Path) -> None:
        """Add a pool file at `path` without copying it."""
        os.link(pool_file, self._target(path))

    def write(self, path: str, data: bytes) -> None:
        # Not seen before publish() renames the whole folder: no rename per file.
        write_new(self._target(path), data)

    def publish(self, manifest: dict) -> Snapshot:
        """Make this snapshot current, atomically."""
        manifest = dict(manifest, id=self.id, created=manifest.get("created", time.time()))
        write_json(self.dir / MANIFEST, manifest)
        final = self.store.snapshots_dir / self.id
        os.rename(self.dir, final)
        try:
            fsync_path(self.store.snapshots_dir)
            point_symlink(self.store.current_link, f"snapshots/{self.id}",
                          self.store.root / f".current-{self.id}")
        except BaseException:
            # Not published (a full disk cannot hold the new link): a complete
            # snapshot that never was current must not pass for a replaced one.
            # (A failure after the switch, flushing the folder, leaves it current.)
            if not self._is_current():
                os.rename(final, self.dir)
            raise
        return Snapshot(self.id, final, manifest)

    def _is_current(self) -> bool:
        try:
            return os.readlink(self.store.current_link) == f"snapshots/{self.id}"
        except OSError:
            return False

    def abandon(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _new_id(store: Store) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 0
    while True:
        candidate = f"{stamp}-{n:03d}"
        if not (store.snapshots_dir / candidate).exists():
            return candidate
        n += 1


def _walk_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            yield Path(dirpath) / name
