"""Which files a client needs: the full module, or the chain of deltas from the build it holds.

Pure: the index's module sections (already narrowed to the client's platform
and language) and what the client holds in, a plan out.

The model, from the real index in ../shared/fixtures/vendor-real/update.ver
and the simulated vendor (vendor/catalog.py):

- A *line* is one module type on one platform, in one language if it has
  one (`type=`, `platform=`, `language=`): `PERSEUS0`, `PERSEUS1`, `PERSEUS2`
  and `CONTINUOUS_PERSEUS<n>` are one line.
- A full module (`level=0`, `base=268435456`) stands alone at its `build`.
  Every other section is a delta from the build `base` to the build `build`.
  The real index chains them: `HIPS0` build 1739, `HIPS1` 1739->1741,
  `HIPS2` 1741->1753; it also lists stale deltas that start from no build
  the client can reach (`EPFW2` 1524->1526 next to `EPFW0` at 1593), and
  full modules newer than their deltas (`TRANSLATOR0` at 1979, deltas up to
  1973). The simulated vendor instead makes both levels end at the newest
  build (level 1 from the full module, level 2 from the build before).
  Treating every section as an edge between builds covers both.
- The client holds, per line, a chain: a full module and the deltas applied
  on top of it, in order. It can restart from any build along its chain
  (it keeps the files).

The rule: per line, the target is the highest build reachable from nothing
(through a full module) or from a build the client holds; a line never goes
back to a lower build. Of the ways to reach it, the one that downloads the
fewest bytes wins (then the fewest files); a chain longer than MAX_DELTAS
deltas is not built, so a full module replaces a long chain. A section
without `size=` (real indexes have them) counts as large as the line's full
module. What real clients do beyond the index's own facts (holding the
chain, restarting from a held build, preferring bytes, the cap) is our
guess; the vendor documents none of it.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from updmirror.eset.modules import Module, Selection, select

#: `base=` of a full module: "no base".
FULL_BASE = 268435456
#: The longest chain of deltas kept on top of a full module (a guess; real indexes chain two).
MAX_DELTAS = 6
#: The cost of a file of unknown size when the line has no full module to compare with.
UNKNOWN_SIZE = 1 << 30
_SAFE = re.compile(r"[^a-z0-9_-]+")

LineKey = tuple[str, str | None, int | None]


@dataclass(frozen=True, slots=True)
class Held:
    """One module file the client holds, as DIR records it (the facts the plan needs).

    Slotted: a process running thousands of endpoints holds some fifty of these per endpoint.
    """

    key: str
    section: str
    type: str
    platform: str | None
    language: int | None
    level: int | None
    continuous: bool
    build: int | None
    base: int | None
    versionid: int | None
    size: int | None

    @classmethod
    def of(cls, m: Module | Held) -> Held:
        if isinstance(m, Held):
            return m
        return cls(module_key(m), m.section, m.type, m.platform, m.language, m.level, m.continuous,
                   m.build, m.base, m.versionid, m.size)

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, raw: dict) -> Held:
        return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__})


Piece = Module | Held


def is_full(m: Piece) -> bool:
    return not m.continuous and (m.level == 0 or m.base == FULL_BASE)


def line_of(m: Piece) -> LineKey:
    """The line a section belongs to; a section without a build is a line of its own."""
    if m.build is None:
        return (f"{m.type}#{m.section.upper()}", m.platform, m.language)
    return (m.type, (m.platform or "").lower() or None, m.language)


def module_key(m: Piece) -> str:
    """The name a module file has in DIR: from what it is, not where a source keeps it.

    Two sources lay the same file out differently (`/prefix/mod_002_perseus_1234/em002_64_l1.dll.nup`
    on a vendor-layout mirror, a bare name on a product's own mirror); the key
    is the same, so a file verified from one source is reused from another.
    """
    kind = "c" if m.continuous else f"l{m.level if m.level is not None else 'x'}"
    base = "full" if m.base in (None, FULL_BASE) else str(m.base)
    name = m.type if m.build is not None else f"{m.type}-{m.section}"
    parts = [_SAFE.sub("_", name.lower())[:64] or "module"]
    if m.language is not None:
        parts.append(str(m.language))
    parts += [kind, f"{base}-{m.build if m.build is not None else 'x'}"]
    return ".".join(parts) + ".nup"


@dataclass(frozen=True)
class LinePlan:
    line: LineKey
    #: The chain the line will hold, full module first.
    chain: tuple[Piece, ...]
    #: The files of `chain` to download, in order.
    download: tuple[Module, ...]
    #: The build the chain reaches (None for a module without builds).
    build: int | None


@dataclass(frozen=True)
class Plan:
    lines: tuple[LinePlan, ...]
    #: Every file to download, in chain order.
    download: tuple[Module, ...]
    #: Files the client holds and keeps.
    keep: tuple[Held, ...]
    #: Files the client holds and no longer needs.
    drop: tuple[Held, ...]
    #: Lines of the index the client cannot install (no full module, no reachable delta).
    unreachable: tuple[LineKey, ...] = field(default=())

    @property
    def bytes(self) -> int:
        return sum(m.size or 0 for m in self.download)

    @property
    def changes(self) -> bool:
        return bool(self.download or self.drop)

    def installed(self) -> tuple[Held, ...]:
        """What the client holds once the plan is carried out, line by line, chain order."""
        return tuple(Held.of(p) for lp in self.lines for p in lp.chain)


def modules_for(index: Iterable[Module], platform: str, language: int | None) -> list[Module]:
    """The sections of an index an endpoint of `platform` and `language` installs.

    Sections that name no platform or language are for every endpoint
    (a guess where the real index shows none).
    """
    languages = (language,) if language is not None else ()
    return select(index, Selection(platforms=(platform,), languages=languages))


def plan_update(index: Sequence[Module], held: Iterable[Held]) -> Plan:
    """What a client holding `held` downloads to be current with `index`.

    `index` are the module sections meant for this client (its platform and
    language); `held` what it holds, each line's chain in order.
    """
    offered: dict[LineKey, list[Module]] = {}
    seen: set[str] = set()
    for m in index:
        key = module_key(m)
        if key not in seen:
            seen.add(key)
            offered.setdefault(line_of(m), []).append(m)
    holding: dict[LineKey, list[Held]] = {}
    for h in held:
        holding.setdefault(line_of(h), []).append(h)

    lines, unreachable = [], []
    for line, sections in offered.items():
        lp = _plan_line(line, sections, holding.get(line, []))
        if lp is None:
            unreachable.append(line)
        else:
            lines.append(lp)
    kept_keys = {Held.of(p).key for lp in lines for p in lp.chain}
    all_held = [h for chain in holding.values() for h in chain]
    return Plan(
        lines=tuple(lines),
        download=tuple(m for lp in lines for m in lp.download),
        keep=tuple(h for h in all_held if h.key in kept_keys),
        drop=tuple(h for h in all_held if h.key not in kept_keys),
        unreachable=tuple(unreachable),
    )


@dataclass(order=True)
class _Way:
    cost: int
    files: int
    deltas: int
    chain: tuple[Piece, ...] = field(compare=False)
    build: int | None = field(compare=False)


def _plan_line(line: LineKey, sections: list[Module], chain: list[Held]) -> LinePlan | None:
    if sections[0].build is None:
        # Nothing to chain: held while listed, fetched when not held.
        mine = {h.key: h for h in chain}
        m = sections[0]
        piece: Piece = mine.get(module_key(m), m)
        return LinePlan(line, (piece,), () if isinstance(piece, Held) else (m,), None)

    fulls = [m for m in sections if is_full(m)]
    full_size = max((m.size for m in fulls if m.size is not None), default=UNKNOWN_SIZE)

    def cost(m: Module) -> int:
        return m.size if m.size is not None else full_size

    # Every place a chain can start: a build along what the client holds (free),
    # or a full module of the index (its size).
    starts: list[_Way] = []
    held_keys = set()
    for i, h in enumerate(chain):
        held_keys.add(h.key)
        if h.build is not None:
            starts.append(_Way(0, 0, i, tuple(chain[:i + 1]), h.build))
    for m in fulls:
        if module_key(m) not in held_keys:
            starts.append(_Way(cost(m), 1, 0, (m,), m.build))
    if not starts:
        return None

    deltas: dict[int, list[Module]] = {}
    for m in sections:
        if not is_full(m) and m.base is not None and m.build is not None and m.build != m.base:
            deltas.setdefault(m.base, []).append(m)

    # Cheapest way to every (build, deltas used) state: a handful of states per line.
    best: dict[tuple[int, int], _Way] = {}
    queue = list(starts)
    heapq.heapify(queue)
    while queue:
        way = heapq.heappop(queue)
        state = (way.build, way.deltas)
        if state in best:
            continue
        best[state] = way
        if way.deltas >= MAX_DELTAS:
            continue
        for d in deltas.get(way.build, ()):
            if module_key(d) in {Held.of(p).key for p in way.chain}:
                continue    # a loop in the index
            heapq.heappush(queue, _Way(way.cost + cost(d), way.files + 1, way.deltas + 1,
                                       way.chain + (d,), d.build))

    target = max(build for build, _ in best)
    way = min(w for (build, _), w in best.items() if build == target)
    return LinePlan(line, way.chain, tuple(p for p in way.chain if isinstance(p, Module)), target)
