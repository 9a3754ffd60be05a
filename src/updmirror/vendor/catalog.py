"""What the simulated vendor publishes, as a pure function of (seed, release).

A tree's catalog is a list of module *lines* (one module type, maybe one
language), each published for one or more platforms. A line's history is
simulated release by release from a seeded generator: now and then a new
build comes out; every few builds a new full module replaces the old one.
From a line's state at a release come its sections:

- ``<TYPE>0``: the full module (level 0, base 268435456),
- ``<TYPE>1``: the delta from that full module to the current build,
- ``<TYPE>2``: the delta from the previous build to the current one,
- ``CONTINUOUS_<TYPE><n>``: for a few fast-moving lines, the last few
  build-to-build deltas, numbered by a counter that only grows.

Every file is identified by its path, and its section (keys, name) never
changes once made: an index that lists a file lists it the same way as any
other index, so channels and releases share files.

Channels at release r: regular lists release r, deferred lists release
r-1, pre-release lists release r with a few lines already at r+1.

The legacy (non-dll) trees also list one frozen line of 2010, SELFDEFENSE
(``dsa_only``): its files are signed with the legacy DSA key alone and carry
no key packet, like the real SELFDEFENSE641 (nod1F1C.nup). A few delta
sections are listed without size=, like the real PEGASUS1 and ENGINE2, and
some versions carry a point release ("1207.1"), as in the real index.

The naming of arm64 and language sections is a guess (the public record
shows neither); see ``section_base``. So is keeping the DSA-only line out of
the dll trees, and which sections lack size= (the real ones are deltas).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from functools import lru_cache

from updmirror.eset.trees import TREES

from .keys import seeded_random

FULL_BASE = 268435456  # 0x10000000: "no base", a full module
#: Releases simulated before release 0, so that release 1 has history.
HISTORY = 12
#: Hours between two releases (the vendor ships several a day).
RELEASE_HOURS = 8
LANGUAGES = (1033, 1049, 1031, 1058)


@dataclass(frozen=True)
class ModuleType:
    number: int
    name: str
    category: str
    group: str
    weight: float          # relative size of its full module
    change: float          # chance of a new build per release
    continuous: bool = False
    arm64: bool = False
    language: bool = False
    legacy: bool = True    # also in the legacy (non-dll) tree
    #: A module of 2010 still listed, like the vendor's SELFDEFENSE641: it never
    #: changes, and its files carry only the legacy DSA signature and no key packet.
    dsa_only: bool = False


def _t(number, name, category, group, weight, change, **kw) -> ModuleType:
    return ModuleType(number, name, category, group, weight, change, **kw)


#: Dozens of module types, with numbers for the `mod_NNN_` folders.
MODULE_TYPES: tuple[ModuleType, ...] = (
    _t(1, "loader", "loader", "core,eslc", 3.0, 0.15, arm64=True),
    _t(2, "perseus", "engine", "perseus,ra,core,eslc", 40.0, 0.3, arm64=True),
    _t(3, "engine", "engine", "engine,core,eslc", 25.0, 1.0, continuous=True, arm64=True),
    _t(4, "archiver", "engine", "archiver,core", 12.0, 0.2, arm64=True),
    _t(5, "advheur", "engine", "advheur,core", 8.0, 0.25),
    _t(6, "cleaner", "engine", "cleaner,core", 10.0, 0.2, arm64=True),
    _t(7, "antistealth", "engine", "antistealth", 2.0, 0.1),
    _t(8, "sysinspector", "tool", "sysinspector", 4.0, 0.05, legacy=False),
    _t(9, "translation", "gui", "translation", 1.5, 0.1, language=True),
    _t(10, "horus", "engine", "horus,core", 6.0, 0.2),
    _t(11, "protoscan", "engine", "protoscan,web", 5.0, 0.15, arm64=True),
    _t(12, "rawfs", "engine", "rawfs,core", 1.5, 0.05),
    _t(13, "mailplugins", "plugin", "mail", 2.0, 0.1),
    _t(14, "antispam", "engine", "antispam,mail", 9.0, 0.3),
    _t(15, "webscanner", "engine", "web", 3.0, 0.15),
    _t(16, "database", "engine", "database", 2.5, 0.1),
    _t(17, "config", "config", "config,core", 0.5, 0.1),
    _t(18, "firewall", "network", "firewall,network", 3.5, 0.1),
    _t(19, "devicecontrol", "policy", "devicecontrol", 1.0, 0.05, legacy=False),
    _t(20, "rapidresponse", "engine", "ra,core", 6.0, 1.0, continuous=True),
    _t(21, "ssl", "network", "ssl,web", 1.0, 0.05),
    _t(22, "netprot", "network", "network", 2.0, 0.1),
    _t(23, "deepbehav", "engine", "behav,core", 4.0, 0.15),
    _t(24, "scriptscan", "engine", "script,core", 2.0, 0.15),
    _t(25, "amsi", "engine", "amsi", 1.0, 0.05, legacy=False),
    _t(26, "uefiscan", "engine", "uefi", 1.5, 0.05, legacy=False),
    _t(27, "livegrid", "cloud", "livegrid", 1.0, 0.1),
    _t(28, "exploitblock", "engine", "exploit,core", 2.0, 0.1),
    _t(29, "ransomshield", "engine", "ransom,core", 1.5, 0.1),
    _t(30, "memscan", "engine", "memscan,core", 2.0, 0.1),
    _t(31, "brute", "network", "brute,network", 0.5, 0.05, legacy=False),
    _t(32, "mac", "engine", "mac", 1.0, 0.05),
    _t(33, "selfdefense", "engine", "perseus", 1.0, 0.0, dsa_only=True),
)

#: Per tree: folder prefix of its files. Trees not listed get a prefix from their name.
PREFIXES = {
    ("ep11", True): "endpointwindowslatest-rel-sta",
    ("ep10", True): "endpointwindowslimited-rel-sta",
}


def prefix(tree: str, dll: bool) -> str:
    return PREFIXES.get((tree, dll)) or (f"{tree}-dll-rel-sta" if dll else f"{tree}-rel-sta")


@dataclass(frozen=True)
class Flavour:
    """One index of a tree (a tree with `update.ver` and `dll/update.ver` has two)."""

    tree: str
    dll: bool

    @property
    def key(self) -> str:
        return f"{self.tree}/dll" if self.dll else self.tree

    def index_paths(self, channel: str) -> tuple[str, ...]:
        return tuple(p for p in TREES[self.tree].index_paths(channel)
                     if p.endswith("/dll/update.ver") == self.dll)


def flavours(tree: str) -> list[Flavour]:
    if tree not in TREES:
        raise KeyError(tree)
    return [Flavour(tree, i.startswith("dll/")) for i in TREES[tree].indexes]


@dataclass(frozen=True)
class Line:
    mtype: ModuleType
    language: int | None
    platforms: tuple[str, ...]


@dataclass
class LineState:
    version: int
    build: int
    full_build: int
    full_version: int
    full_release: int
    release: int                      # when `build` came out
    prev_build: int | None = None     # the build before `build`
    changes_since_full: int = 0
    chain: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # seq, build, base, version, release


@dataclass(frozen=True)
class FileSpec:
    """One file and the section that lists it."""

    path: str                          # "/prefix/mod_.../em..._l0.dll.nup"
    section: str
    items: tuple[tuple[str, str], ...]  # index keys in vendor order, without file= and size=
    weight: float
    timestamp: int                     # when it was made
    data_name: str                     # the module's own file, `filename=` in its text: "em001_32.dat"
    dsa_only: bool = False             # signed only with the legacy DSA key, no key packet
    sizeless: bool = False             # its section has no size=, like some of the vendor's

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def literal_name(self) -> str:
        """The name in its literal data packet: the file's own, or 2010's `NOD32.LIC`."""
        return "NOD32.LIC" if self.dsa_only else self.name


#: Share of delta sections (levels 1, 2) listed without size=; the real 2021
#: index has 2 of 87 sections so, both current deltas (a guess: only deltas, and never
#: the DSA-only ones: the real one, SELFDEFENSE641, has its size=).
SIZELESS_SHARE = 0.04
#: Shares of versions with a point release (`1207.1 (20210421)`) in the real 2021
#: index: 18 of 56 deltas, 1 of 31 full modules; and one full module's `1425T (20210806)`.
POINT_VERSION_SHARE = {0: 0.03, 1: 0.3, 2: 0.3}
T_VERSION_SHARE = 0.03
#: When the frozen DSA-only modules came out (the real one: 28.07.2010).
DSA_ONLY_TIME = calendar.timegm((2010, 7, 28, 0, 0, 0))


def release_time(seed: int, release: int) -> int:
    """The timestamp of a release: fixed by the seed, always in the past."""
    start = calendar.timegm((2025, 1, 1, 6, 0, 0)) + (seed % 200) * 86400
    return start + release * RELEASE_HOURS * 3600


def _date(ts: int) -> tuple[str, str]:
    tm = time.gmtime(ts)
    return f"{tm.tm_mday:02d}.{tm.tm_mon:02d}.{tm.tm_year}", f"{tm.tm_year}{tm.tm_mon:02d}{tm.tm_mday:02d}"


@lru_cache(maxsize=64)
def lines(seed: int, flavour: Flavour) -> tuple[Line, ...]:
    rng = seeded_random("lines", seed, flavour.key)
    out = []
    for t in MODULE_TYPES:
        if (not flavour.dll and not t.legacy) or (flavour.dll and t.dsa_only):
            continue
        platforms = ["x86", "x64"]
        if flavour.dll and t.arm64:
            platforms.append("arm64")
        if t.language:
            # Language packs exist for two platforms only, like the vendor's few.
            out += [Line(t, lcid, ("x86", "x64")[: 1 + (lcid in (1033, 1049))]) for lcid in LANGUAGES]
        elif rng.random() < 0.9 or t.continuous or t.dsa_only:
            out.append(Line(t, None, tuple(platforms)))
    return tuple(out)


def _start(seed: int, flavour: Flavour, line: Line) -> LineState:
    rng = seeded_random("start", seed, flavour.key, line.mtype.name, line.language)
    if line.mtype.name == "engine":
        version = 30000 + seed % 5000
    else:
        version = rng.randint(1000, 2500)
    build = rng.randint(1000, 30000)
    if line.mtype.dsa_only:
        # Frozen with two deltas on its full module, as SELFDEFENSE640..642 are.
        return LineState(version + 2, build + 2, build, version, -HISTORY, -HISTORY, prev_build=build + 1)
    return LineState(version, build, build, version, -HISTORY, -HISTORY)


#: (seed, flavour, line) -> states at releases -HISTORY, -HISTORY+1, ... (grown on demand).
_HISTORIES: dict[tuple[int, Flavour, Line], list[LineState]] = {}


def _step(seed: int, flavour: Flavour, line: Line, s: LineState, r: int) -> LineState:
    rng = seeded_random("step", seed, flavour.key, line.mtype.name, line.language, r)
    if rng.random() >= line.mtype.change:
        return s
    n = LineState(**{**s.__dict__, "chain": list(s.chain)})
    n.prev_build = s.build
    n.build = s.build + rng.randint(1, 25)
    n.version = s.version + rng.randint(1, 3)
    n.release = r
    n.changes_since_full += 1
    if line.mtype.continuous:
        seq = s.chain[-1][0] + 1 if s.chain else 1
        n.chain.append((seq, n.build, s.build, n.version, r))
        del n.chain[:-4]
    if n.changes_since_full >= rng.randint(3, 8) or rng.random() < 0.08:
        n.full_build, n.full_version, n.full_release = n.build, n.version, r
        n.changes_since_full = 0
    return n


def state_at(seed: int, flavour: Flavour, line: Line, release: int) -> LineState:
    """The line at a release; each step depends only on the one before."""
    if release < -HISTORY:
        raise ValueError(f"release {release} is before the simulated history")
    states = _HISTORIES.setdefault((seed, flavour, line), [_start(seed, flavour, line)])
    while len(states) <= release + HISTORY:
        states.append(_step(seed, flavour, line, states[-1], len(states) - HISTORY))
    return states[release + HISTORY]


def section_base(line: Line, platform: str) -> tuple[str, str]:
    """(section name stem, `type=` value) for a line on a platform.

    x64 puts `64` after the type (`LOADER640`, type `loader64`, as the
    vendor does); arm64 does the same with `ARM64` (a guess); a language
    pack adds `_<LCID>_` so the level stays the trailing digits.
    """
    suffix = {"x86": "", "x64": "64", "arm64": "arm64"}[platform]
    mtype = line.mtype.name + suffix
    stem = mtype.upper()
    if line.language is not None:
        stem += f"_{line.language}_"
    return stem, mtype


def _file_path(flavour: Flavour, line: Line, platform: str, build: int, kind: str) -> str:
    _, mtype = section_base(line, platform)
    bits = {"x86": "32", "x64": "64", "arm64": "a64"}[platform]
    lang = f"_{line.language}" if line.language is not None else ""
    ext = ".dll.nup" if flavour.dll else ".nup"
    n = line.mtype.number
    return f"/{prefix(flavour.tree, flavour.dll)}/mod_{n:03d}_{mtype}{lang}_{build}/em{n:03d}_{bits}_{kind}{ext}"


def _weight(seed: int, flavour: Flavour, line: Line, platform: str, kind: str, build: int) -> float:
    rng = seeded_random("weight", seed, flavour.key, line.mtype.name, line.language, platform, kind, build)
    level = {"l0": 1.0, "l1": 0.12, "l2": 0.04}.get(kind, 0.015)
    plat = {"x86": 0.9, "x64": 1.0, "arm64": 0.8}[platform]
    return line.mtype.weight * level * plat * rng.lognormvariate(0.0, 0.35)


def _spec(seed, flavour, line, platform, *, kind, section, version, build, base, release,
          level: int | None) -> FileSpec:
    stem, mtype = section_base(line, platform)
    t = line.mtype
    path = _file_path(flavour, line, platform, build, kind)
    rng = seeded_random("spec", seed, path)
    timestamp = DSA_ONLY_TIME + rng.randint(0, 72000) if t.dsa_only else release_time(seed, release)
    dotted, compact = _date(timestamp)
    delta = level in (1, 2)
    point = f".{rng.randint(1, 3)}" if rng.random() < POINT_VERSION_SHARE.get(level, 0.0) else ""
    if level == 0 and not point and rng.random() < T_VERSION_SHARE:
        point = "T"
    items = [("version", f"{version}{point} ({compact})"), ("versionid", str(version)), ("build", str(build)),
             ("type", mtype), ("category", t.category)]
    if level is not None:
        items.append(("level", str(level)))
    # The vendor's build register names follow the type: "Selfdefense64Build".
    items += [("base", str(base)), ("date", dotted), ("platform", platform), ("group", t.group),
              ("buildregname", f'"{mtype.capitalize()}Build"')]
    if line.language is not None:
        items.append(("language", str(line.language)))
    bits = {"x86": "32", "x64": "64", "arm64": "a64"}[platform]
    return FileSpec(path, section, tuple(items), _weight(seed, flavour, line, platform, kind, build), timestamp,
                    data_name=f"em{t.number:03d}_{bits}.dat", dsa_only=t.dsa_only,
                    sizeless=delta and not t.dsa_only and rng.random() < SIZELESS_SHARE)


def line_files(seed: int, flavour: Flavour, line: Line, s: LineState) -> list[FileSpec]:
    out = []
    for platform in line.platforms:
        stem, _ = section_base(line, platform)
        common = dict(seed=seed, flavour=flavour, line=line, platform=platform)
        out.append(_spec(**common, kind="l0", section=f"{stem}0", version=s.full_version,
                         build=s.full_build, base=FULL_BASE, release=s.full_release, level=0))
        if s.build != s.full_build:
            out.append(_spec(**common, kind="l1", section=f"{stem}1", version=s.version, build=s.build,
                             base=s.full_build, release=s.release, level=1))
            if s.prev_build is not None and s.prev_build != s.full_build:
                out.append(_spec(**common, kind="l2", section=f"{stem}2", version=s.version, build=s.build,
                                 base=s.prev_build, release=s.release, level=2))
        for seq, build, base, version, rel in s.chain:
            cstem = "CONTINUOUS_" + stem
            out.append(_spec(**common, kind="n1", section=f"{cstem}{seq}", version=version, build=build,
                             base=base, release=rel, level=None))
    return out


def _preview_lines(seed: int, flavour: Flavour, release: int) -> set[Line]:
    """The few lines the pre-release channel has one release early."""
    rng = seeded_random("preview", seed, flavour.key, release)
    moving = [ln for ln in lines(seed, flavour)
              if state_at(seed, flavour, ln, release + 1).release == release + 1]
    # The detection engine always: pre-release is ahead in database version.
    engine = {ln for ln in moving if ln.mtype.name == "engine"}
    others = [ln for ln in moving if ln not in engine]
    return engine | set(rng.sample(others, min(len(others), rng.randint(2, 4))))


def index_files(seed: int, flavour: Flavour, release: int, channel: str) -> list[FileSpec]:
    """The module files one index lists, in index order."""
    if channel == "deferred":
        return index_files(seed, flavour, release - 1, "regular")
    ahead = _preview_lines(seed, flavour, release) if channel == "pre-release" else set()
    out: list[FileSpec] = []
    for ln in lines(seed, flavour):
        at = release + 1 if ln in ahead else release
        out += line_files(seed, flavour, ln, state_at(seed, flavour, ln, at))
    return out


def other_sections(seed: int, flavour: Flavour, release: int) -> tuple[list, list]:
    """Non-module sections: (before the modules, after them).

    The same in every channel, so that the deferred index of a release is
    byte for byte the regular index of the release before.
    """
    ts = release_time(seed, release)
    dotted, compact = _date(ts)
    expire, _ = _date(ts + 3 * 365 * 86400)  # meaning unknown: keep it far ahead
    eset_upd = "eset_upd/"
    before = [
        ("HOSTS", [
            ("Other", f"200@http://um01.eset.com/{eset_upd}, 200@http://um03.eset.com/{eset_upd}, "
                      f"100000@http://update.eset.com/{eset_upd}"),
            ("Prerelease-other", f"100@http://um10.eset.com/{eset_upd}pre/, "
                                 f"100000@http://update.eset.com/{eset_upd}pre/"),
            ("Deferred-other", "100@http://um21.eset.com/deferred/eset_upd/, "
                               "100000@http://update.eset.com/deferred/eset_upd/"),
        ]),
        ("Expire", [("date", expire)]),
    ]
    rng = seeded_random("other", seed, flavour.key, release)
    after = [
        ("SETUP", [("version", f"11.1.{2000 + release % 100}.0"), ("date", dotted)]),
        ("PCUVER", [("version", f"11.1.{2039 + release % 50}.0"), ("date", dotted)]),
        ("PICO_UPDATE", [("version", f"{1200 + release} ({compact})"), ("build", str(5000 + release)),
                         ("date", dotted)]),
        ("HASH_CLOUD", [("value", f"{rng.getrandbits(256):064x}"), ("date", dotted)]),
    ]
    return before, after
