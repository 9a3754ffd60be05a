"""Bring the shared folder up to date with the store's current snapshot.

The order is what keeps a client reading the folder safe, the same
guarantees as the HTTP side (architecture invariant 1):

1. nothing is written while a name the mirror needs belongs to someone else;
2. every file the new indexes list is in place (written aside, renamed in);
3. only then each index is replaced, in one rename;
4. the files of the index replaced stay for the grace period, and only
   names the publisher's record lists are ever removed.

A publish that stops anywhere leaves the old indexes with all their files;
the next one finishes the work.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from updmirror.errors import FolderError, FormatError
from updmirror.eset.updatever import MAX_INDEX_BYTES
from updmirror.progress import Progress
from updmirror.store import Snapshot, Store
from updmirror.units import human_bytes

from .layout import FileId, PlannedIndex, index_target, plan_index
from .record import RECORD_NAME, FolderRecord, Generation
from .targets import Folder, LocalFolder

log = logging.getLogger("updmirror.folder")

#: The publisher's record is small; anything larger was not written by us.
MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass
class FolderReport:
    folder: str
    snapshot: str
    layout: str
    copied: int = 0
    bytes_copied: int = 0
    indexes_replaced: int = 0
    kept: int = 0          # files of replaced indexes still there for their grace period
    removed: int = 0
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def publish(store: Store, folder: Folder, layout: str, grace: float, *,
            clock: Callable[[], float] = time.time, progress: bool = False) -> FolderReport:
    """Publish the store's current snapshot to `folder` (already opened).

    Raises FolderError (nothing the clients see has changed unless said so
    in the message) or FormatError when the snapshot itself is damaged.
    """
    snap = store.current()
    if snap is None:
        raise FolderError(f"{folder}: the store {store.root} has no snapshot yet; run 'updmirror sync' first")
    record = FolderRecord.from_bytes(folder.read(RECORD_NAME, MAX_RECORD_BYTES), f"{folder}/{RECORD_NAME}")
    before = record.taken()
    owned = record.owned()
    plans = _plan(snap, layout, dict(before))
    report = FolderReport(str(folder), snap.id, layout)

    wanted: dict[str, FileId] = {}
    for p in plans:
        wanted.update(p.files)
    names = set(wanted) | {p.target for p in plans}
    for name in sorted(names - owned):
        if folder.size(name) is not None:
            raise FolderError(f"{folder}/{name} exists and was not written by the mirror; nothing was "
                              "changed. Move it away, or set [folder] to a folder of the mirror's own")

    gen = record.current
    if gen is None or gen.snapshot != snap.id or gen.layout != layout or gen.names != names:
        gen = Generation(snap.id, layout, clock(), indexes=[p.target for p in plans], files=wanted)
        record.begin(gen, clock())
    for folder_name in sorted({posixpath.dirname(n) for n in names} - {""}):
        record.dirs += folder.makedirs(folder_name)
    _save(folder, record)

    # Files first ...
    todo = [(name, file) for name, file in sorted(wanted.items())
            if before.get(name.casefold()) != file or folder.size(name) != file[1]]
    with Progress(progress, len(todo), sum(f[1] for _, f in todo)) as shown:
        for name, (path, size) in todo:
            source = _snapshot_file(snap, path, size)
            folder.put_file(name, source)
            report.copied += 1
            report.bytes_copied += size
            shown.advance_bytes(size)
            shown.file_done()
    folder.flush()

    # ... then each index, in one rename ...
    for p in plans:
        if folder.read(p.target, MAX_INDEX_BYTES) != p.data:
            folder.put_bytes(p.target, p.data)
            report.indexes_replaced += 1
    folder.flush()
    record.finish(gen, clock())
    for old in record.generations:
        for name in set(old.indexes) - names:
            folder.remove(name)     # an index nothing publishes any more goes at once
    _save(folder, record)

    # ... and what the replaced indexes listed only once their grace is over.
    gone = record.expire(clock(), grace)
    live: set[str] = set()
    for g in record.generations:
        live |= g.names
    for g in gone:
        for name in sorted(g.names - live):
            folder.remove(name)
            report.removed += 1
    needed = {d for n in live for d in _parents(n)}
    for d in sorted(set(record.dirs) - needed, key=lambda d: -d.count("/")):
        if folder.rmdir(d):
            record.dirs.remove(d)
    report.kept = len({f for g in record.generations for f in g.files} - set(wanted))
    _save(folder, record)
    folder.flush()

    report.message = (f"shared folder {folder} holds snapshot {snap.id} ({layout} layout): "
                      f"{report.copied} file(s) copied ({human_bytes(report.bytes_copied)}), "
                      f"{report.indexes_replaced} index(es) replaced"
                      + (f", {report.kept} old file(s) kept for the grace period" if report.kept else "")
                      + (f", {report.removed} removed" if report.removed else ""))
    log.info("%s", report.message)
    return report


def _plan(snap: Snapshot, layout: str, taken: dict[str, FileId]) -> list[PlannedIndex]:
    entries = [e for e in snap.manifest.get("indexes", []) if isinstance(e.get("path"), str)]
    several = len({e.get("tree") for e in entries}) > 1
    plans, targets = [], set()
    for e in entries:
        source = e["path"].lstrip("/")
        target = index_target(layout, e.get("tree") or "", e.get("channel") or "regular", source, several)
        if target.casefold() in targets:
            raise FolderError(f"two indexes of snapshot {snap.id} would both be {target} in the "
                              "shared folder; use layout = \"vendor\"")
        targets.add(target.casefold())
        try:
            data = (snap.tree / source).read_bytes()
        except OSError as exc:
            raise FormatError(f"{snap.tree / source}: cannot read the snapshot's index "
                              f"({exc.strerror})") from None
        plans.append(plan_index(layout, target, source, data, lambda p: _size(snap, p), taken))
    return plans


def _size(snap: Snapshot, path: str) -> int | None:
    try:
        st = os.stat(snap.tree / path.lstrip("/"))
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _snapshot_file(snap: Snapshot, path: str, size: int) -> Path:
    source = snap.tree / path.lstrip("/")
    if _size(snap, path) != size:
        raise FormatError(f"{source}: changed while being published (snapshots are immutable); "
                          "run 'updmirror sync' to repair the store")
    return source


def _parents(name: str) -> list[str]:
    out = []
    folder = posixpath.dirname(name)
    while folder:
        out.append(folder)
        folder = posixpath.dirname(folder)
    return out


def _save(folder: Folder, record: FolderRecord) -> None:
    folder.put_bytes(RECORD_NAME, record.to_bytes())


def warn_if_unreadable(root: Path) -> str | None:
    """Why the share's read-only account could not read a local folder, or None."""
    for folder in (root, *root.parents):
        try:
            mode = folder.stat().st_mode
        except OSError:
            return None
        need = stat.S_IXOTH | (stat.S_IROTH if folder == root else 0)
        if mode & need != need:
            return (f"{folder} is mode {stat.S_IMODE(mode):04o}: an account other than its owner "
                    f"cannot {'read' if folder == root else 'reach'} the shared folder; "
                    f"chmod o+{'rx' if folder == root else 'x'} {folder}")
    return None


def open_folder(cfg) -> Folder:
    """The folder [folder] names, opened (raises FolderError)."""
    from updmirror.unc import parse_account

    from .targets import SmbFolder

    if cfg.path is not None:
        folder: Folder = LocalFolder(cfg.path)
        problem = warn_if_unreadable(cfg.path) if cfg.path.exists() else None
        if problem:
            log.warning("%s", problem)
    else:
        folder = SmbFolder(cfg.unc, str(parse_account(cfg.username)), cfg.password, cfg.port)
    folder.open()
    return folder
