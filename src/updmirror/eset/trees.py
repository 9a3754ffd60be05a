"""The vendor's trees and channels, and which tree a client's User-Agent wants.

All of it is data: a new product generation is one more row in `TREES` (and
maybe in `ALIASES`), not new code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

CHANNELS = ("regular", "pre-release", "deferred")


@dataclass(frozen=True)
class Tree:
    """One product generation's index (or indexes) on the vendor host.

    `folder` is the folder under `eset_upd/` ("" for the oldest tree),
    `indexes` the sub-paths of the index files within it.
    """

    name: str
    folder: str
    indexes: tuple[str, ...]

    def index_paths(self, channel: str = "regular") -> tuple[str, ...]:
        """Host-relative index paths (no leading slash) for `channel`."""
        base = f"eset_upd/{self.folder}/" if self.folder else "eset_upd/"
        if channel == "regular":
            return tuple(base + i for i in self.indexes)
        if channel == "pre-release":
            return tuple(base + "pre/" + i for i in self.indexes)
        if channel == "deferred":
            return tuple("deferred/" + base + i for i in self.indexes)
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")

    @property
    def has_dll(self) -> bool:
        return any(i.startswith("dll/") for i in self.indexes)


class MirroredIndex(NamedTuple):
    """One index a mirror of some trees and channels holds."""

    tree: str
    channel: str
    path: str         # host-relative vendor path, e.g. "eset_upd/ep11/pre/dll/update.ver"
    name: str         # its sub-path within the tree, e.g. "dll/update.ver": where a
                      # product's own mirror serves it, at its root


def mirrored_indexes(trees: Iterable[str], channels: Iterable[str]) -> Iterator[MirroredIndex]:
    """Every index of `trees` x `channels`, in that order (trees outer,
    channels inner, a tree's indexes in the order of its row in TREES).

    The one enumeration the sync plans from and the status checks against,
    so that the two cannot disagree on what the mirror should hold.
    """
    channels = tuple(channels)
    for name in trees:
        tree = TREES[name]
        for channel in channels:
            for path, sub in zip(tree.index_paths(channel), tree.indexes, strict=True):
                yield MirroredIndex(name, channel, path, sub)


_BOTH = ("update.ver", "dll/update.ver")
_DLL = ("dll/update.ver",)
_PLAIN = ("update.ver",)


def _rows() -> list[Tree]:
    rows = [
        Tree("v3", "", _PLAIN),
        Tree("v5", "v5", _PLAIN),
        Tree("v9", "v9", _PLAIN),
        Tree("v10", "v10", _BOTH),
        Tree("v11", "v11", _BOTH),
        Tree("ep6", "ep6.6", _BOTH),
        Tree("ep8", "ep8", _BOTH),
        Tree("ep9", "ep9", _BOTH),
        Tree("pcu", "pcu", _PLAIN),
    ]
    rows += [Tree(f"v{n}", f"v{n}", _DLL) for n in range(12, 17)]
    rows += [Tree(f"ep{n}", f"ep{n}", _DLL) for n in range(10, 14)]
    return rows


TREES: dict[str, Tree] = {t.name: t for t in _rows()}

#: Generations the vendor does not publish a tree of, and the tree they use.
ALIASES: dict[str, str] = {
    "ep7": "ep8",
    **{f"v{n}": "v16" for n in range(17, 20)},
    "v4": "v3",
    "v6": "v5", "v7": "v5", "v8": "v5",
}

#: What a User-Agent says about its product generation, tried in this order:
#: (tree name prefix, case-insensitive pattern whose one group is the major).
#: The exported nginx and Apache configurations are generated from these.
AGENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ep", re.compile(r"\b(?:EEA|EES|EFSW|EMSX|ESFW)\s+Update\b.*?\bBPC\s+(\d{1,3})\.", re.I)),
    ("v", re.compile(r"\bUpdate\b.*?\bBPC\s+(\d{1,3})\.", re.I)),
)


#: How each family's product names itself; the first is the real agent of the
#: format page (section 5), the home one a client sample of the same shape.
_AGENT_FORMS = {
    "endpoint": ("EEA Update (Windows; U; {bits}; BPC {bpc}; OS: 10.0.26100 SP 0.0 NT; TDB 0; CL 1.1.1; "
                 "x64c; APP eea; BEO 1; ASP 0.0; FW 0.0; PX 0; PUA 0; RA 0)"),
    "home": "ESS Update (Windows; U; {bits}; BPC {bpc}; OS: 10.0.19045 SP 0.0 NT; TDB 0; CL 1.1.1)",
}
#: Product builds seen in agents; other generations get `<major>.0.0.0` (or the
#: folder's `6.6`), which is all that routing reads (`BPC <major>.`).
_BUILDS = {"ep11": "11.0.2044.0", "v16": "16.0.22.0", "v5": "5.2.9.1"}
#: Trees that are no product generation, and whose product's agent asks for them (a guess).
_AGENT_OF = {"pcu": "ep11"}
#: After the product's agent in what a mirror sends upstream: logs tell a mirror from a client.
MIRROR_AGENT_TAG = "updmirror"


def user_agent(tree: str, platform: str = "x64", *, mirror: bool = False) -> str:
    """The User-Agent of the product that reads `tree`: what its clients on
    `platform` send, and what `route` (or a product's own mirror) maps back to `tree`.

    `mirror`: as this mirror sends it upstream, with MIRROR_AGENT_TAG after it.
    Raises KeyError for a tree not in TREES.
    """
    name = _AGENT_OF.get(tree, tree)
    family, major = _split(name)
    if tree not in TREES or major is None:
        raise KeyError(tree)
    folder = TREES[name].folder
    bpc = _BUILDS.get(name) or (f"{folder[2:]}.0.0" if "." in folder else f"{major}.0.0.0")
    agent = _AGENT_FORMS[family].format(bpc=bpc, bits="32bit" if platform == "x86" else "64bit")
    return f"{agent} {MIRROR_AGENT_TAG}" if mirror else agent


def tree_from_user_agent(user_agent: str | None) -> str | None:
    """The generation a client's User-Agent names (`ep11`, `v16`), or None."""
    if not user_agent:
        return None
    for prefix, pattern in AGENT_PATTERNS:
        m = pattern.search(user_agent)
        if m:
            return f"{prefix}{int(m.group(1))}"
    return None


#: `Eset-Spread-Control: domain=<value>` values and the channel each asks for
#: (one source shows the header; the spellings beyond it are guesses).
CHANNEL_BY_DOMAIN: dict[str, str] = {
    "production": "regular", "regular": "regular",
    "pre-release": "pre-release", "prerelease": "pre-release",
    "deferred": "deferred", "delayed": "deferred"}


def channel_from_spread_control(header: str | None) -> str:
    """The channel an `Eset-Spread-Control` header asks for ("regular" when none)."""
    channel = "regular"
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "domain":
            channel = CHANNEL_BY_DOMAIN.get(value.strip().lower(), "regular")
    return channel


def route(user_agent: str | None, published: list[str] | tuple[str, ...],
          default: str | None = None) -> str | None:
    """The published tree a client should get.

    The named generation if published, else its alias, else the nearest
    published generation of the same family below it (a newer client reads
    an older index it understands), else above it; `default` when the agent
    is unknown or nothing of its family is published.
    """
    return route_generation(tree_from_user_agent(user_agent), published, default)


def route_generation(wanted: str | None, published: list[str] | tuple[str, ...],
                     default: str | None = None) -> str | None:
    """`route()` for a client whose User-Agent named generation `wanted` (None: none)."""
    if wanted is None:
        return default
    if wanted in published:
        return wanted
    alias = ALIASES.get(wanted)
    if alias in published:
        return alias
    family, major = _split(wanted)
    candidates = [(m, name) for name in published
                  for f, m in [_split(name)] if f == family and m is not None]
    if not candidates or major is None:
        return default
    below = [c for c in candidates if c[0] <= major]
    if below:
        return max(below)[1]
    return min(candidates)[1]


def _split(name: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"(ep|v)(\d+)", name)
    if not m:
        return ("other", None)
    return ("endpoint" if m.group(1) == "ep" else "home", int(m.group(2)))


def index_for_request(tree: Tree, request_path: str, channel: str = "regular") -> str | None:
    """The tree's index path for a client's `/update.ver` or `/dll/update.ver`.

    Older clients ask for `/update.ver`; a tree that only has a `dll/` index
    answers that too, since its clients would ask for `dll/`.
    """
    paths = tree.index_paths(channel)
    want_dll = request_path.lstrip("/").startswith("dll/")
    for p in paths:
        if p.endswith("/dll/update.ver") == want_dll:
            return p
    return paths[0] if paths else None
