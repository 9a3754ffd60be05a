"""Syncing from another updmirror: its manifest, read, checked and planned from.

The manifest (store/tiers.py) says, per file of the upper mirror's current
snapshot, its size and SHA-256. The lower mirror keeps a file it holds
whose size and SHA-256 (recorded when it verified the file) equal the
upper's, without reading it again, and fetches one whose digest differs.
Nothing in it is trusted beyond that: every file fetched is still checked
for its size, inner CRC and signature against the lower mirror's own keys,
and must also match the manifest, so a manifest that disagrees with the
index or with the bytes is an error naming the file and the URL.

Decisions are pure functions; only `fetch_upper_manifest` does I/O.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from updmirror import redact
from updmirror.config import clean_mirror_name
from updmirror.errors import FormatError
from updmirror.eset.modules import Module
from updmirror.store.tiers import FORMAT, MAX_HOPS, MAX_TIER_MANIFEST_BYTES, TIER_MANIFEST_PATH
from updmirror.upstream import NotFoundError

from .plan import FilePlan, IndexPlan

log = logging.getLogger("updmirror.sync")

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Whether the upstream published an updmirror manifest at the last look (state/).
TIER_STATE_FILE = "tier.json"


@dataclass
class UpperManifest:
    """An upper mirror's manifest, checked for shape (not for truth)."""

    url: str                                  # without credentials
    mirror: str
    snapshot: str
    indexes: dict[str, dict]                  # by index path
    files: dict[str, tuple[int, str]]         # path -> (size, sha256)


def upper_is_updmirror(store, upstream_url: str) -> bool | None:
    """What the last sync found at `upstream_url`: True (it had a manifest),
    False (it had none: the vendor, a product's mirror), None (not looked yet)."""
    state = store.load_state(TIER_STATE_FILE)
    if state.get("url") != redact.url(upstream_url):
        return None
    present = state.get("present")
    return present if isinstance(present, bool) else None


def manifest_url(base_url: str) -> str:
    return base_url + TIER_MANIFEST_PATH


async def fetch_upper_manifest(upstream, base_url: str) -> UpperManifest | None:
    """The upper mirror's manifest, or None when it has none (the vendor, a
    product's mirror, an older updmirror). Raises FormatError for a document
    that says it is a manifest but is broken, UpstreamError as fetch_index."""
    url = manifest_url(base_url)
    try:
        result = await upstream.fetch_index(url, None, MAX_TIER_MANIFEST_BYTES)
    except NotFoundError:
        return None
    return parse_upper_manifest(result.body, redact.url(url))


def parse_upper_manifest(body: bytes, url: str) -> UpperManifest | None:
    """None for a body that is no manifest at all (a web server's page for an
    unknown path); FormatError for one that claims to be and is broken."""
    try:
        data = json.loads(body)
    except ValueError:
        log.info("%s: not an updmirror manifest (not JSON); planning from the indexes alone", url)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        log.info("%s: not an updmirror manifest; planning from the indexes alone", url)
        return None

    def bad(why: str) -> FormatError:
        return FormatError(f"{url}: a broken updmirror manifest: {why}; the upper mirror must "
                           "publish a new snapshot (run 'updmirror sync' there)")

    if data.get("version") != 1:
        raise bad(f"version {data.get('version')!r}, this mirror reads version 1")
    files: dict[str, tuple[int, str]] = {}
    raw_files = data.get("files")
    if not isinstance(raw_files, dict):
        raise bad("no files")
    for path, entry in raw_files.items():
        if not isinstance(entry, dict):
            raise bad(f"file {path!r} has no size and SHA-256")
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"file {path!r} has size {size!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise bad(f"file {path!r} has SHA-256 {digest!r}")
        files[path] = (size, digest)
    indexes = {}
    for entry in data.get("indexes") or []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            indexes[entry["path"]] = entry
    return UpperManifest(url, clean_name(data.get("mirror")), str(data.get("snapshot", "")),
                         indexes, files)


def clean_name(value) -> str:
    """A hop's name from upstream, safe to show anywhere (status page, metrics label)."""
    return clean_mirror_name(value or "?") or "?"


def check_index(manifest: UpperManifest, plan: IndexPlan, index_sha256: str | None) -> str | None:
    """Why the manifest and the index read from the upper mirror (whose
    SHA-256 is `index_sha256`, None when not known) are not of one snapshot
    (the upper mirror published between the two requests), or None."""
    entry = manifest.indexes.get(plan.path)
    if entry is None:
        return f"{manifest.url} does not list the index {redact.url(plan.url)}"
    listed = entry.get("sha256")
    if index_sha256 is not None and listed != index_sha256:
        return (f"{manifest.url} lists another {plan.path} (SHA-256 {str(listed)[:16]}...) than the "
                f"index at {redact.url(plan.url)} (SHA-256 {index_sha256[:16]}...)")
    return None


def check_modules(manifest: UpperManifest, plan: IndexPlan) -> None:
    """Every module the index lists must be in the manifest at the index's size."""
    for module in plan.modules:
        listed = manifest.files.get(module.path)
        if listed is None:
            raise FormatError(f"{redact.url(module.url)}: listed by the index at {redact.url(plan.url)} "
                              f"but not by the upper mirror's manifest {manifest.url}; the upper "
                              "mirror's snapshot is inconsistent")
        if module.size is not None and listed[0] != module.size:
            raise FormatError(f"{redact.url(module.url)}: the index at {redact.url(plan.url)} gives "
                              f"size={module.size}, the upper mirror's manifest {manifest.url} "
                              f"says {listed[0]}")


def plan_with_manifest(files: FilePlan, manifest: UpperManifest, known_sha256: Callable[[str], str | None],
                       pool_size: Callable[[str], int | None]) -> tuple[FilePlan, int]:
    """`files` re-planned: a pool file is kept when its recorded size and
    SHA-256 equal the manifest's, without reading it; one that differs (or
    whose digest cannot be known) is fetched anew. Returns the plan and how
    many files the manifest confirmed."""
    plan = FilePlan(fetch=list(files.fetch))
    confirmed = 0
    for module in files.reuse:
        size, digest = manifest.files[module.path]
        # plan_files kept it for holding size= bytes (check_modules: the manifest's
        # size too); only a section without size= needs the pool file's own size.
        held = module.size if module.size is not None else pool_size(module.path)
        if held == size and known_sha256(module.path) == digest:
            plan.reuse.append(module)
            confirmed += 1
        else:
            log.info("%s: the upper mirror holds other bytes under this name (SHA-256 %s); fetching "
                     "it anew", module.path, digest[:16])
            plan.fetch.append(module)
    return plan, confirmed


def check_download(manifest: UpperManifest | None, module: Module, size: int, digest: str) -> None:
    """The bytes fetched must be those the manifest lists."""
    if manifest is None or module.path not in manifest.files:
        return
    want_size, want = manifest.files[module.path]
    if (size, digest) != (want_size, want):
        raise FormatError(f"{redact.url(module.url)}: got {size} bytes with SHA-256 {digest}, the upper "
                          f"mirror's manifest {manifest.url} lists {want_size} bytes with SHA-256 {want}; "
                          "refusing the file")


def chain(upper: list[dict] | None, me: str, synced_at: float, published_at: float) -> list[dict]:
    """The hops of an index: the upper mirror's (checked for shape) and this mirror last."""
    hops = []
    for hop in (upper or [])[-(MAX_HOPS - 1):]:
        if not isinstance(hop, dict):
            continue
        hops.append({"name": clean_name(hop.get("name")),
                     "synced_at": _time(hop.get("synced_at")),
                     "published_at": _time(hop.get("published_at"))})
    hops.append({"name": me, "synced_at": synced_at, "published_at": published_at})
    return hops


def _time(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def vendor_date(manifest: UpperManifest | None, plan: IndexPlan) -> float | None:
    """When the vendor published the index, as far as the chain knows: the
    vendor-facing mirror saw it in the vendor's Last-Modified."""
    if manifest is None:
        return plan.upstream_date
    entry = manifest.indexes.get(plan.path) or {}
    return _time(entry.get("vendor_date"))
