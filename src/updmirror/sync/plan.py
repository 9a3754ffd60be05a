"""Decisions of a sync, as pure functions: what to fetch, what to keep,
whether an index may be published, and the index clients will see.

No I/O here except `stat` of pool files, so tests can call these directly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from updmirror.errors import FormatError
from updmirror.eset.modules import UPSTREAM_ONLY_SECTIONS, Module, is_module_section
from updmirror.eset.trees import mirrored_indexes
from updmirror.eset.updatever import UpdateVer

#: What an upstream's layout is called in [upstream] layout and in the state file.
VENDOR, PRODUCT_MIRROR = "vendor", "product-mirror"


@dataclass
class IndexPlan:
    """One configured index: where it comes from and what it lists."""

    tree: str
    channel: str
    path: str                         # host-relative, no leading slash
    url: str                          # full upstream URL (no credentials)
    changed: bool = True
    index: UpdateVer | None = None    # parsed upstream index when changed
    modules: list[Module] = field(default_factory=list)   # selected modules
    validators: dict[str, str] = field(default_factory=dict)
    upstream_date: float | None = None
    layout: str = VENDOR
    upstream_format: str = "text"     # "rar" when upstream sent it RAR-wrapped
    body_sha256: str | None = None    # of the index as upstream sent it, when changed

    @property
    def key(self) -> str:
        return f"{self.tree}/{self.channel}/{self.path}"

    @property
    def state_key(self) -> str:
        """What its validators are kept under: a product's mirror serves several
        trees' indexes at one URL, told apart by the User-Agent."""
        return f"{self.url} ({self.tree})"


def index_plans(base_url: str, trees: Iterable[str], channels: Iterable[str], layout: str) -> list[IndexPlan]:
    """The configured indexes, each at its upstream URL for `layout`.

    In the snapshot an index keeps its vendor path whatever the layout, so
    downstream the mirror looks like the vendor's server. A product's mirror
    has `update.ver` / `dll/update.ver` at its URL and one channel (which the
    caller checks): it is planned as the regular one.
    """
    return [IndexPlan(i.tree, i.channel, i.path,
                      base_url + (i.name if layout == PRODUCT_MIRROR else i.path), layout=layout)
            for i in mirrored_indexes(trees, channels)]


def layouts_to_try(configured: str, remembered: Iterable[str | None]) -> tuple[str, ...]:
    """The layouts a sync tries, in order: the configured one alone, or (for
    "auto") the one the last sync found first, the vendor's when none was found."""
    if configured != "auto":
        return (configured,)
    if PRODUCT_MIRROR in set(remembered):
        return (PRODUCT_MIRROR, VENDOR)
    return (VENDOR, PRODUCT_MIRROR)


def lists_bare_names(mods: Iterable[Module]) -> bool:
    """Whether an index names its files the way a product's own mirror does:
    bare names beside the index. The vendor and an updmirror write paths from
    the host's root, so an index with one such path comes from neither layout's
    flat form: it is what an updmirror routes to an agent whose tree it lacks."""
    files = [m.file for m in mods]
    return bool(files) and not any(f.startswith("/") or "://" in f for f in files)


@dataclass
class FilePlan:
    """The module files of all changed indexes, split by what must happen."""

    fetch: list[Module] = field(default_factory=list)
    reuse: list[Module] = field(default_factory=list)

    @property
    def fetch_bytes(self) -> int:
        return sum(m.size or 0 for m in self.fetch)


def plan_files(indexes: Iterable[IndexPlan], pool_file) -> FilePlan:
    """Which files are already verified in the pool, which must be fetched.

    `pool_file(path) -> Path` locates a verified file. A pool file is only
    ever placed after verification, so the right size means verified (and,
    for a section without size=, being there does). The same path listed by
    several indexes (channels share files) is one file.
    """
    plan = FilePlan()
    seen: dict[str, Module] = {}
    for index in indexes:
        for module in index.modules:
            earlier = seen.get(module.path)
            if earlier is not None:
                if None not in (earlier.size, module.size) and earlier.size != module.size:
                    raise FormatError(
                        f"{index.url} [{module.section}]: {module.path} is listed with size "
                        f"{module.size}, but [{earlier.section}] lists it with size {earlier.size}")
                if earlier.size is not None or module.size is None:
                    continue
                # One index without size=, another with: the file is held to the size given.
                (plan.fetch if earlier in plan.fetch else plan.reuse).remove(earlier)
            seen[module.path] = module
            if _verified_in_pool(pool_file(module.path), module.size):
                plan.reuse.append(module)
            else:
                plan.fetch.append(module)
    return plan


def _verified_in_pool(path: Path, size: int | None) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return size is None or st.st_size == size


def drop_share(previous: Iterable[str], new: Iterable[str]) -> float:
    """The share of `previous` files that `new` no longer lists."""
    before = set(previous)
    if not before:
        return 0.0
    return len(before - set(new)) / len(before)


def rewrite_index(index: UpdateVer, selected: Iterable[Module]) -> bytes:
    """The index as the mirror serves it.

    `[HOSTS]`, `[SERVERS]` and `[LINKS]` go (clients would go around the
    mirror), so do module sections the administrator filtered out (clients
    must not ask for files the mirror lacks). `file=` becomes host-relative,
    which keeps paths from piling up when mirrors replicate each other;
    everything else keeps its bytes.
    """
    keep = {m.section.upper(): m for m in selected}
    out = UpdateVer(preamble=copy.deepcopy(index.preamble), sections=[])
    for section in index.sections:
        name = section.name.upper()
        if name in UPSTREAM_ONLY_SECTIONS:
            continue
        section = copy.deepcopy(section)   # the upstream index stays as it was read
        if is_module_section(section):
            module = keep.get(name)
            if module is None:
                continue
            if section.get("file") != module.path:
                section.set("file", module.path)
        out.sections.append(section)
    out.end_last_line()
    return out.to_bytes()
