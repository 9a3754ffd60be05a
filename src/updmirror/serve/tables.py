"""What the server answers, computed once per snapshot, not per request.

A `Tables` maps every servable request path to a `FileEntry` whose response
headers are already rendered; indexes and other small files carry their
bytes, so answering them is one dictionary lookup and one write. Files of
snapshots in their grace period are merged in below the current snapshot,
except indexes: an index always comes from the current snapshot, so a
client never reads an index of one snapshot next to files of another it
could not get.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from updmirror.eset.trees import TREES, channel_from_spread_control, index_for_request, route
from updmirror.httpfacts import content_type as _content_type
from updmirror.store.snapshots import Snapshot, Store
from updmirror.store.tiers import TIER_MANIFEST_PATH

from .httpcore import http_date

log = logging.getLogger(__name__)

_TIER_MANIFEST = "/" + TIER_MANIFEST_PATH

#: Files up to this size are kept in memory and sent with one write.
SMALL_FILE = 64 * 1024
#: ... as long as the non-index ones together stay below this, per worker.
SMALL_FILES_BUDGET = 64 * 1024 * 1024
#: An index is always kept in memory unless it is absurdly large.
MAX_INDEX_IN_MEMORY = 16 * 1024 * 1024
#: The request headers an index answer depends on (User-Agent routing, channel).
INDEX_VARY = "User-Agent, Eset-Spread-Control"
#: Distinct User-Agent strings whose routing is remembered per snapshot.
ROUTE_CACHE_SIZE = 4096


def content_type(name: str) -> bytes:
    return _content_type(name).encode("ascii")


@dataclass(slots=True)
class FileEntry:
    """One servable file; `headers` hold everything but status, Date and length."""

    fs_path: str
    size: int
    mtime: int              # whole seconds, as Last-Modified shows it
    etag: bytes
    last_modified: bytes
    headers: bytes
    body: bytes | None      # the bytes when kept in memory
    is_index: bool
    length_header: bytes = field(default=b"")
    #: The inode the tables saw: what a request opens must still be it.
    dev: int = 0
    ino: int = 0


@dataclass(slots=True)
class _Shared:
    """What files with the same inode share across snapshots (hard links)."""

    headers: bytes
    etag: bytes
    last_modified: bytes
    body: bytes | None


def _render(name: str, st: os.stat_result) -> tuple[bytes, bytes, bytes]:
    # Like nginx: size and mtime, so every worker computes the same tag.
    etag = f'"{st.st_mtime_ns // 1_000_000_000:x}-{st.st_size:x}"'.encode()
    last_modified = http_date(int(st.st_mtime))
    headers = (b"Content-Type: " + content_type(name) + b"\r\nLast-Modified: " + last_modified
               + b"\r\nETag: " + etag + b"\r\nAccept-Ranges: bytes\r\n")
    return headers, etag, last_modified


class Tables:
    """The servable view of the store at one moment."""

    def __init__(self, current: Snapshot | None, files: dict[bytes, FileEntry],
                 published: dict[str, set[str]], default_tree: str | None,
                 grace_ids: list[str], next_expiry: float | None, shared: dict):
        self.current = current
        self.current_id = current.id if current else None
        self.files = files
        self.published = published            # channel -> trees with an index in it
        self.default_tree = default_tree
        self.grace_ids = grace_ids
        self.next_expiry = next_expiry
        self.shared = shared
        self._routes: dict[tuple, FileEntry | None] = {}

    def for_agent(self, request_path: bytes, user_agent: bytes | None,
                  spread_control: bytes | None) -> FileEntry | None:
        """The index a client's `/update.ver` or `/dll/update.ver` gets."""
        key = (request_path, user_agent, spread_control)
        try:
            return self._routes[key]
        except KeyError:
            pass
        entry = self._route(request_path, user_agent, spread_control)
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        self._routes[key] = entry
        return entry

    def _route(self, request_path: bytes, user_agent: bytes | None,
               spread_control: bytes | None) -> FileEntry | None:
        channel = channel_from_spread_control(spread_control.decode("latin-1") if spread_control else None)
        agent = user_agent.decode("latin-1") if user_agent else None
        path = request_path.decode("ascii")
        for ch in dict.fromkeys((channel, "regular")):
            trees = sorted(self.published.get(ch, ()))
            if not trees:
                continue
            default = self.default_tree if self.default_tree in trees else trees[0]
            name = route(agent, trees, default)
            tree = TREES.get(name) if name else None
            if tree is None:
                continue
            index = index_for_request(tree, path, ch)
            entry = self.files.get(("/" + index).encode()) if index else None
            if entry is not None and entry.is_index:
                return _with_vary(entry)
        return None


def _with_vary(entry: FileEntry) -> FileEntry:
    # Caches between client and mirror must not hand one agent's index to another.
    return FileEntry(entry.fs_path, entry.size, entry.mtime, entry.etag, entry.last_modified,
                     entry.headers + b"Vary: " + INDEX_VARY.encode() + b"\r\n", entry.body,
                     True, entry.length_header, entry.dev, entry.ino)


#: build(current=...) not given: read the store's pointer.
_FROM_STORE: Any = object()


def build(store: Store, grace: float, default_tree: str | None,
          previous: Tables | None = None, now: float | None = None,
          current: Snapshot | None = _FROM_STORE) -> Tables:
    """The tables of `current` (by default the store's current snapshot) and of
    the snapshots in their grace period."""
    now = time.time() if now is None else now
    if current is _FROM_STORE:
        current = store.current()
    # If a switch lands between these two calls, `older` still holds `current`
    # (not yet retired) and lacks only the new snapshot, served on the next build.
    older = [s for s in store.in_grace(grace, now) if current is None or s.id != current.id]
    old_shared = previous.shared if previous else {}
    shared: dict = {}
    budget = [SMALL_FILES_BUDGET]
    files: dict[bytes, FileEntry] = {}
    published: dict[str, set[str]] = {}
    index_paths: set[str] = set()
    if current is not None:
        for item in current.manifest.get("indexes", []):
            path = item.get("path")
            if isinstance(path, str):
                index_paths.add("/" + path.lstrip("/"))
                tree, channel = item.get("tree"), item.get("channel", "regular")
                if tree is None:
                    tree = _tree_of_index(path.lstrip("/"))
                if tree is not None:
                    published.setdefault(channel or "regular", set()).add(tree)
        _add_snapshot(current, files, True, index_paths, shared, old_shared, budget)
    next_expiry = None
    for snap in older:
        _add_snapshot(snap, files, False, index_paths, shared, old_shared, budget)
        expiry = (snap.retired if snap.retired is not None else now) + grace
        next_expiry = expiry if next_expiry is None else min(next_expiry, expiry)
    return Tables(current, files, published, default_tree, [s.id for s in older],
                  next_expiry, shared)


def _tree_of_index(path: str) -> str | None:
    for name, tree in TREES.items():
        for channel in ("regular", "pre-release", "deferred"):
            if path in tree.index_paths(channel):
                return name
    return None


def _is_index(rel: str, index_paths: set[str]) -> bool:
    # The tier manifest too: it describes the current snapshot, never an older one.
    return rel in index_paths or rel.endswith("/update.ver") or rel == _TIER_MANIFEST


def _add_snapshot(snap: Snapshot, files: dict[bytes, FileEntry], is_current: bool,
                  index_paths: set[str], shared: dict, old_shared: dict, budget: list[int]) -> None:
    root = str(snap.tree)
    prefix = len(root)
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            fs_path = os.path.join(dirpath, name)
            rel = fs_path[prefix:].replace(os.sep, "/")
            key = rel.encode("utf-8", "surrogateescape")
            if key in files:
                continue
            is_index = _is_index(rel, index_paths)
            if is_index and not is_current:
                continue
            try:
                st = os.lstat(fs_path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # never follow a symlink out of the tree
            inode = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            info = shared.get(inode)
            if info is None:
                info = old_shared.get(inode)
                if info is None:
                    info = _describe(fs_path, name, st, is_index, budget)
                elif info.body is not None and not is_index:
                    if budget[0] >= st.st_size:
                        budget[0] -= st.st_size
                    else:
                        info = _Shared(info.headers, info.etag, info.last_modified, None)
                shared[inode] = info
            files[key] = FileEntry(fs_path, st.st_size, int(st.st_mtime), info.etag,
                                   info.last_modified, info.headers, info.body, is_index,
                                   b"Content-Length: %d\r\n" % st.st_size, st.st_dev, st.st_ino)


def _describe(fs_path: str, name: str, st: os.stat_result, is_index: bool,
              budget: list[int]) -> _Shared:
    headers, etag, last_modified = _render(name, st)
    body = None
    limit = MAX_INDEX_IN_MEMORY if is_index else SMALL_FILE
    if st.st_size <= limit and (is_index or budget[0] >= st.st_size):
        try:
            with open(fs_path, "rb") as f:
                body = f.read(st.st_size + 1)
        except OSError as exc:
            log.warning("cannot read %s (%s); it will be read per request", fs_path, exc.strerror)
            body = None
        if body is not None and len(body) != st.st_size:
            body = None  # changed under us: the store is immutable, so read per request
        if body is not None and not is_index:
            budget[0] -= st.st_size
    return _Shared(headers, etag, last_modified, body)
