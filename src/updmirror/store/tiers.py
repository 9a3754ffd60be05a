"""The manifest an updmirror publishes for the mirrors that replicate from it.

A lower mirror reads it at `/updmirror/manifest.json` (the vendor layout's
root) to plan without re-reading files it already holds, and to learn the
chain of mirrors the data came through. It lists, per file of the current
snapshot, its size and SHA-256 (computed when the file was verified, never
again); per index, its version, and `hops`: one entry per mirror from the
vendor-facing one down to this one, each with `synced_at` (when that mirror
last confirmed the index against its own upstream) and `published_at` (when
it published this version). A mirror is a relay, never a source of trust:
a lower mirror still verifies every new file against its own pinned keys.

The file is written into each snapshot's tree, so the exported nginx and
Apache configurations serve it as they serve the indexes (with the hops as
of the publish; the shared folder does not carry it). The integrated server serves it refreshed: a sync that finds
nothing new publishes no snapshot, yet it confirms the chain anew, and its
run record holds the hops it saw; `served_tier_manifest` puts the newest
confirming run's hops in. Without that, a quiet vendor would make every
tier below look stale.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .records import RUNS_FILE, read_runs
from .snapshots import Snapshot, Store

#: Where the manifest is, relative to the served tree's root.
TIER_MANIFEST_PATH = "updmirror/manifest.json"
#: Where a lower mirror waits for this mirror's next snapshot (serve/announce.py).
ANNOUNCE_PATH = "updmirror/announce"
FORMAT = "updmirror-tier-manifest"
VERSION = 1
#: The most bytes a lower mirror reads of an upper mirror's manifest (some
#: 130 bytes per file: room for a hundred thousand files).
MAX_TIER_MANIFEST_BYTES = 16 * 1024 * 1024
#: The most hops a chain keeps; a longer one (a loop of mirrors?) is cut at the vendor's end.
MAX_HOPS = 16
#: How many recent runs are searched for a newer confirmation of the chain.
_RUNS_SEARCHED = 50


def tier_manifest(snapshot_id: str, published: float, mirror: str, indexes: list[dict],
                  sha256: dict[str, str]) -> dict:
    """The manifest of a snapshot: `indexes` are its manifest entries (with
    `file_list`, `hops`, `vendor_date`), `sha256` the digests of its files."""
    files: dict[str, dict] = {}
    listed = []
    for entry in indexes:
        for path, size in entry.get("file_list", []):
            files[path] = {"size": size, "sha256": sha256[path]}
        hops = entry.get("hops") or []
        listed.append({"tree": entry.get("tree"), "channel": entry.get("channel"),
                       "path": entry.get("path"), "versionid": entry.get("versionid"),
                       "sha256": entry.get("sha256"),
                       "vendor_date": entry.get("vendor_date"), "hops": hops,
                       "synced_at": hops[-1]["synced_at"] if hops else None,
                       "files": len(entry.get("file_list", []))})
    return {"format": FORMAT, "version": VERSION, "mirror": mirror, "snapshot": snapshot_id,
            "published": published, "indexes": listed, "files": files}


def encode(manifest: dict) -> bytes:
    return (json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def confirmed_hops(runs: list[dict], path: str | None, version) -> list[dict] | None:
    """The chain of the newest successful run that saw index `path` at
    `version` (runs newest first); None when none recorded one."""
    for run in runs:
        if not run.get("ok"):
            continue
        for item in run.get("indexes") or []:
            if (isinstance(item, dict) and item.get("path") == path and item.get("hops")
                    and item.get("versionid") == version):
                return item["hops"]
    return None


def refresh(manifest: dict, runs: list[dict]) -> dict:
    """`manifest` with each index's chain as the newest confirming run saw it."""
    indexes = []
    for entry in manifest.get("indexes", []):
        hops = confirmed_hops(runs, entry.get("path"), entry.get("versionid"))
        old = entry.get("synced_at") or 0
        if hops and (hops[-1].get("synced_at") or 0) > old:
            entry = dict(entry, hops=hops, synced_at=hops[-1]["synced_at"])
        indexes.append(entry)
    return dict(manifest, indexes=indexes)


_cache: dict[str, tuple[tuple, bytes]] = {}


def served_tier_manifest(store: Store, snapshot: Snapshot | None = None) -> bytes | None:
    """The current snapshot's manifest, its chains refreshed from the run
    records; None when the snapshot has none (published before manifests,
    or nothing published). Rendered once per snapshot and run record."""
    if snapshot is None:
        directory, _broken = store.locate_current()
    else:
        directory = snapshot.dir
    if directory is None:
        return None
    path = directory / "tree" / TIER_MANIFEST_PATH
    key = (_stat_key(path), _stat_key(store.state / RUNS_FILE))
    if key[0] is None:
        return None
    cached = _cache.get(str(store.root))
    if cached and cached[0] == key:
        return cached[1]
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    body = encode(refresh(manifest, read_runs(store.state, _RUNS_SEARCHED)))
    _cache.clear()   # one store per process: keep one entry
    _cache[str(store.root)] = (key, body)
    return body


def _stat_key(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
